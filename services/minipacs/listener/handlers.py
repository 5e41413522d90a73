"""pynetdicom event handlers: read the event, call the archive, answer a status."""

from __future__ import annotations

import logging

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.events import Event

from minipacs import filemeta
from minipacs.archive import StoreRequest, store_instance
from minipacs.listener.operations import ListenerContext, operation, peer, status_dataset
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
    """C-ECHO and C-STORE."""

    @operation(ctx, "c_echo_count")
    def on_c_echo(event: Event) -> int:
        log.info("C-ECHO from %s: Success", peer(event))
        return Status.SUCCESS

    @operation(ctx, "c_store_count")
    def on_c_store(event: Event) -> Dataset:
        request = event.request
        sop_class_uid = str(request.AffectedSOPClassUID)
        sop_instance_uid = str(request.AffectedSOPInstanceUID)
        transfer_syntax_uid = str(event.context.transfer_syntax)
        result = store_instance(
            ctx.archive,
            StoreRequest(
                part10=filemeta.part10(sop_class_uid, sop_instance_uid, transfer_syntax_uid)
                + event.encoded_dataset(include_meta=False),
                sop_class_uid=sop_class_uid,
                sop_instance_uid=sop_instance_uid,
                transfer_syntax_uid=transfer_syntax_uid,
                calling_ae=event.assoc.requestor.ae_title,
                context_sop_class_uid=str(event.context.abstract_syntax),
            ),
        )
        outcome = result.status.name + (" (duplicate)" if result.duplicate else "")
        log.info(
            "C-STORE from %s: %s -> %s%s",
            peer(event),
            request.AffectedSOPInstanceUID,
            outcome,
            f": {result.comment}" if result.comment else "",
        )
        return status_dataset(result.status, result.comment)

    return [(evt.EVT_C_ECHO, on_c_echo), (evt.EVT_C_STORE, on_c_store)]
