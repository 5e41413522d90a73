"""Modality Performed Procedure Step N-CREATE / N-SET handlers (PS3.4 F)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.events import Event

from minipacs.listener.operations import ListenerContext, operation, peer, status_dataset
from minipacs.mpps import service
from minipacs.status import Status

log = logging.getLogger(__name__)

NResult = tuple[Dataset, Dataset | None]


def n_operation(ctx: ListenerContext, counter: str) -> Callable:
    """`operations.operation` for N-services, whose handlers answer a
    (status, dataset) pair; every failure is 0x0110 Processing failure."""

    def failure(status: Status, comment: str) -> NResult:
        return status_dataset(Status.PROCESSING_FAILURE, comment), None

    return operation(ctx, counter, failure)


def _status(outcome: service.Outcome, n_set: bool) -> Dataset:
    ds = status_dataset(outcome.status, outcome.comment)
    # N-SET responses carry the offending tags (PS3.7 10.1.1.1.8); pynetdicom's
    # N-CREATE response has no such field, so there they are in ErrorComment.
    if n_set and outcome.tags:
        ds.AttributeIdentifierList = list(outcome.tags)
    return ds


def mpps_handlers(ctx: ListenerContext) -> list[tuple]:
    """EVT_N_CREATE and EVT_N_SET for ModalityPerformedProcedureStep."""

    @n_operation(ctx, "n_create_count")
    def on_n_create(event: Event) -> NResult:
        requested = event.request.AffectedSOPInstanceUID
        outcome = service.create(
            ctx.pool,
            str(requested) if requested else None,
            event.attribute_list,
            event.assoc.requestor.ae_title,
        )
        log.info(
            "N-CREATE MPPS from %s: %s -> %s%s linked worklist %s",
            peer(event),
            outcome.sop_instance_uid or requested,
            outcome.status.name,
            f" ({outcome.comment})" if outcome.comment else "",
            list(outcome.worklist_ids),
        )
        reply = None
        if outcome.status == Status.SUCCESS and not requested:
            reply = Dataset()
            reply.AffectedSOPInstanceUID = outcome.sop_instance_uid
        return _status(outcome, n_set=False), reply

    @n_operation(ctx, "n_set_count")
    def on_n_set(event: Event) -> NResult:
        uid = str(event.request.RequestedSOPInstanceUID)
        outcome = service.set_(ctx.pool, uid, event.modification_list)
        log.info(
            "N-SET MPPS from %s: %s -> %s%s worklist %s",
            peer(event),
            uid,
            outcome.status.name,
            f" ({outcome.comment})" if outcome.comment else "",
            list(outcome.worklist_ids),
        )
        return _status(outcome, n_set=True), None

    return [(evt.EVT_N_CREATE, on_n_create), (evt.EVT_N_SET, on_n_set)]
