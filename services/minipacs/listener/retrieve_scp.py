"""The protocol side of C-MOVE and C-GET: responses, counts, C-CANCEL, a
requestor that goes away. The archive side (what to send, the job queue) is
in `listener/retrieve.py`; see its docstring for the handler protocol."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from io import BytesIO
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import association, evt
from pynetdicom.dimse_primitives import C_GET, C_MOVE
from pynetdicom.dsutils import encode
from pynetdicom.events import Event
from pynetdicom.service_class import QueryRetrieveServiceClass
from pynetdicom.status import QR_GET_SERVICE_CLASS_STATUS, QR_MOVE_SERVICE_CLASS_STATUS

from minipacs import stats
from minipacs.index.retrieve import MODELS
from minipacs.sender.send import Counts, enable_raw_sending, store_file
from minipacs.status import Status

log = logging.getLogger(__name__)

_MOVE_GET_UIDS = set(MODELS)
PENDING_INTERVAL = 0.1  # seconds between C-GET pending responses


class RetrieveServiceClass(QueryRetrieveServiceClass):
    """C-MOVE and C-GET responses driven by our handlers (see module doc)."""

    stats_pool: Any = None  # set by install(): counts C-GET instances sent/failed

    def SCP(self, req: Any, context: Any) -> None:  # noqa: N802 (pynetdicom's name)
        if isinstance(req, C_MOVE):
            self.statuses = QR_MOVE_SERVICE_CLASS_STATUS
            self._serve(req, context, evt.EVT_C_MOVE, C_MOVE)
        elif isinstance(req, C_GET):
            self.statuses = QR_GET_SERVICE_CLASS_STATUS
            self._serve(req, context, evt.EVT_C_GET, C_GET)
        else:
            super().SCP(req, context)

    def _serve(self, req: Any, context: Any, event: Any, rsp_class: type) -> None:
        cx_id = context.context_id
        ts = context.transfer_syntax[0]

        def respond(status: int, counts: Counts | None, failed_uids: list[str] | None) -> None:
            rsp = rsp_class()
            rsp.MessageIDBeingRespondedTo = req.MessageID
            rsp.AffectedSOPClassUID = req.AffectedSOPClassUID
            rsp.Status = int(status)
            if counts is not None:
                if status in (Status.PENDING, Status.CANCEL):
                    rsp.NumberOfRemainingSuboperations = max(counts.remaining, 0)
                rsp.NumberOfCompletedSuboperations = counts.completed
                rsp.NumberOfFailedSuboperations = counts.failed
                rsp.NumberOfWarningSuboperations = counts.warning
            if failed_uids is not None and status != Status.PENDING:
                ds = Dataset()
                ds.FailedSOPInstanceUIDList = failed_uids
                rsp.Identifier = BytesIO(
                    encode(ds, ts.is_implicit_VR, ts.is_little_endian, ts.is_deflated)
                )
            self.dimse.send_msg(rsp, cx_id)

        generator = evt.trigger(
            self.assoc,
            event,
            {"request": req, "context": context.as_tuple, "_is_cancelled": self.is_cancelled},
        )
        try:
            if rsp_class is C_MOVE:
                self._relay_move(generator, respond)
            else:
                self._run_get(req, generator, respond)
        except Exception:
            log.exception("%s failed unexpectedly", event.name)
            if self.assoc.is_established:
                rsp = rsp_class()
                rsp.MessageIDBeingRespondedTo = req.MessageID
                rsp.AffectedSOPClassUID = req.AffectedSOPClassUID
                rsp.Status = int(Status.UNABLE_TO_PROCESS)
                rsp.ErrorComment = "internal error, see PACS log"
                self.dimse.send_msg(rsp, cx_id)
        finally:
            generator.close()

    def _requestor_gone(self) -> bool:
        return (
            not self.assoc.is_established
            or not self.assoc.dul.is_alive()
            or self.assoc.acse.is_aborted()
        )

    def _relay_move(self, generator: Iterator, respond: Any) -> None:
        for status, payload in generator:
            if self._requestor_gone():
                log.info("C-MOVE requestor went away; the job carries on")
                return
            if isinstance(status, Dataset):  # refused before any job
                self._respond_dataset(status, respond)
                return
            counts = None
            if payload is not None:
                counts = Counts(
                    payload.remaining, payload.completed, payload.failed, payload.warning
                )
            if status == Status.PENDING:
                respond(status, counts, None)
                continue
            respond(status, counts, list(payload.failed_uids) if status != Status.SUCCESS else None)
            return

    def _run_get(self, req: Any, generator: Iterator, respond: Any) -> None:
        first = next(generator)
        if isinstance(first, tuple):
            self._respond_dataset(first[0], respond)
            return
        counts = Counts(int(first))
        if counts.remaining == 0:
            respond(Status.SUCCESS, counts, None)
            return
        self._send_all(req, generator, respond, counts, [])

    def _send_all(
        self, req: Any, generator: Iterator, respond: Any, counts: Counts, failed: list[str]
    ) -> None:
        sent = 0
        next_pending = 0.0
        for n, (_status, (path, inst)) in enumerate(generator):
            if self._requestor_gone():
                return
            if self.is_cancelled(req.MessageID):
                log.info("C-GET cancelled after %d instances", counts.done)
                respond(Status.CANCEL, counts, failed)
                return
            status = store_file(self.assoc, path, inst, msg_id=(req.MessageID + n) % 65535 + 1)
            if counts.add(status):
                failed.append(inst.sop_instance_uid)
            else:
                sent += 1
            if self._requestor_gone():
                return
            # Pending responses are optional (PS3.4 C.4.3.1.3.1): one every
            # PENDING_INTERVAL keeps the requestor informed without costing a
            # DIMSE message per instance.
            if time.monotonic() >= next_pending:
                next_pending = time.monotonic() + PENDING_INTERVAL
                respond(Status.PENDING, counts, None)
        _count_instances(self.stats_pool, sent, len(failed))
        respond(final_status(counts), counts, failed or None)

    def _respond_dataset(self, ds: Dataset, respond: Any) -> None:
        rsp_status = int(ds.Status)
        respond(rsp_status, None, None)


def final_status(counts: Counts) -> Status:
    """PS3.4 C.4.2.3.1 / C.4.3.3.1: Success when every sub-operation
    succeeded, Failure 0xA702 when all failed, otherwise Warning 0xB000."""
    if counts.failed == 0 and counts.warning == 0:
        return Status.SUCCESS
    if counts.failed and counts.completed == 0 and counts.warning == 0:
        return Status.OUT_OF_RESOURCES_SUBOPERATIONS
    return Status.WARNING_SUBOPERATIONS_FAILED


def _count_instances(pool: Any, sent: int, failed: int) -> None:
    if pool is None:
        return
    if sent:
        stats.increment(pool, "instances_sent", sent)
    if failed:
        stats.increment(pool, "instances_failed", failed)


def install(pool: Any) -> None:
    """Route the Patient/Study Root MOVE and GET SOP classes to
    RetrieveServiceClass. pynetdicom maps SOP classes to service classes with
    `uid_to_service_class`, looked up by the association at each request; no
    public hook exists, so the association module's reference is wrapped."""
    enable_raw_sending()
    RetrieveServiceClass.stats_pool = pool
    original = association.uid_to_service_class
    if getattr(original, "_minipacs", False):
        return

    def lookup(uid: str) -> type:
        return RetrieveServiceClass if uid in _MOVE_GET_UIDS else original(uid)

    lookup._minipacs = True  # type: ignore[attr-defined]
    association.uid_to_service_class = lookup


def prefer_requested_syntaxes(event: Event) -> None:
    """EVT_REQUESTED: for storage SOP classes the requestor wants to *receive*
    (SCP role proposed: C-GET), accept the transfer syntaxes in the
    requestor's order (getscu +xv asks for JPEG 2000 first) so compressed
    files go out as stored. pynetdicom otherwise picks in our order."""
    assoc = event.assoc
    request = assoc.requestor.primitive
    roles = assoc.requestor.role_selection
    if request is None or not roles:
        return
    wanted: dict[str, list[str]] = {}
    for cx in request.presentation_context_definition_list:
        role = roles.get(cx.abstract_syntax)
        if role is not None and role.scp_role:
            order = wanted.setdefault(cx.abstract_syntax, [])
            order += [ts for ts in cx.transfer_syntax if ts not in order]
    if not wanted:
        return
    contexts = assoc.acceptor.supported_contexts
    for cx in contexts:
        order = wanted.get(cx.abstract_syntax)
        if order:
            ours = list(cx.transfer_syntax)
            cx.transfer_syntax = [ts for ts in order if ts in ours] + [
                ts for ts in ours if ts not in order
            ]
    assoc.acceptor.supported_contexts = contexts
