"""pynetdicom event handlers: read the event, call the archive, answer a status."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.events import Event

from minipacs import filemeta
from minipacs.archive import StoreRequest, StoreResult, store_instance
from minipacs.listener import fast_store
from minipacs.listener.operations import (
    ListenerContext,
    guarded,
    operation,
    peer,
    peer_of,
    status_dataset,
)
from minipacs.status import Status

log = logging.getLogger(__name__)


def association_handlers() -> list[tuple]:
    """One INFO line per association: accepted, rejected, released, aborted."""

    def accepted(event: Event) -> None:
        log.info("association accepted: %s", peer(event))

    def rejected(event: Event) -> None:
        request = event.assoc.requestor.primitive
        called = request.called_ae_title if request is not None else "?"
        log.info("association rejected: %s (called AE %r)", peer(event), called)

    def released(event: Event) -> None:
        log.info("association released: %s", peer(event))

    def aborted(event: Event) -> None:
        log.info("association aborted: %s", peer(event))

    return [
        (evt.EVT_ACCEPTED, accepted),
        (evt.EVT_REJECTED, rejected),
        (evt.EVT_RELEASED, released),
        (evt.EVT_ABORTED, aborted),
    ]


def service_handlers(ctx: ListenerContext) -> list[tuple]:
    """C-ECHO and C-STORE (through pynetdicom, and the fast path)."""

    @operation(ctx, "c_echo_count")
    def on_c_echo(event: Event) -> int:
        log.info("C-ECHO from %s: Success", peer(event))
        return Status.SUCCESS

    @operation(ctx, "c_store_count")
    def on_c_store(event: Event) -> Dataset:
        request = event.request
        result = store_received(
            ctx,
            event.assoc,
            str(request.AffectedSOPClassUID),
            str(request.AffectedSOPInstanceUID),
            str(event.context.transfer_syntax),
            str(event.context.abstract_syntax),
            [event.encoded_dataset(include_meta=False)],
        )
        return status_dataset(result.status, result.comment)

    def fast_c_store(assoc: Association, request: fast_store.Request) -> tuple[int, str | None]:
        def store() -> tuple[int, str | None]:
            result = store_received(
                ctx,
                assoc,
                request.sop_class_uid,
                request.sop_instance_uid,
                request.transfer_syntax_uid,
                request.context_sop_class_uid,
                request.dataset,
            )
            return result.status, result.comment

        return guarded(
            ctx, "c_store_count", "on_c_store", peer_of(assoc), store, lambda *failed: failed
        )

    bound = [(evt.EVT_C_ECHO, on_c_echo), (evt.EVT_C_STORE, on_c_store)]
    if ctx.settings.log_level != "DEBUG":  # DEBUG shows pynetdicom's view of every message
        bound.append(
            (evt.EVT_CONN_OPEN, lambda event: fast_store.install(event.assoc, fast_c_store))
        )
    return bound


def store_received(
    ctx: ListenerContext,
    assoc: Association,
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax_uid: str,
    context_sop_class_uid: str,
    dataset: Sequence[bytes | bytearray | memoryview],
) -> StoreResult:
    """Store one received instance (its dataset in one or more pieces) and
    log the outcome."""
    result = store_instance(
        ctx.archive,
        StoreRequest(
            # One copy: the file as written, and as parsed (BytesIO shares bytes).
            part10=b"".join(
                [filemeta.part10(sop_class_uid, sop_instance_uid, transfer_syntax_uid), *dataset]
            ),
            sop_class_uid=sop_class_uid,
            sop_instance_uid=sop_instance_uid,
            transfer_syntax_uid=transfer_syntax_uid,
            calling_ae=assoc.requestor.ae_title,
            context_sop_class_uid=context_sop_class_uid,
        ),
    )
    outcome = result.status.name + (" (duplicate)" if result.duplicate else "")
    log.info(
        "C-STORE from %s: %s -> %s%s",
        peer_of(assoc),
        sop_instance_uid,
        outcome,
        f": {result.comment}" if result.comment else "",
    )
    return result
