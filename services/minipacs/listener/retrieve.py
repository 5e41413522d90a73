"""C-MOVE and C-GET in the listener.

pynetdicom's built-in C-MOVE opens the sub-association itself. Ours does not:
the listener resolves the matches, queues one job on Redis for a sender worker
and relays the worker's progress as pending responses. `RetrieveServiceClass`
is the protocol side (responses, counts, C-CANCEL, a requestor that goes
away) for the MOVE and GET SOP classes; the handlers below are the archive side.

Handler protocol (our own, in pynetdicom's `(status, payload)` style):
- EVT_C_MOVE yields `(Status.PENDING, Progress)` while the job runs and one
  final `(status, Progress)`; or a single `(status_dataset, None)`.
- EVT_C_GET yields the number of sub-operations, then `(Status.PENDING,
  (path, JobInstance))` per instance; or a single `(status_dataset, None)`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from io import BytesIO
from typing import Any

import redis
from pydicom.dataset import Dataset
from pynetdicom import association, evt
from pynetdicom.dimse_primitives import C_GET, C_MOVE
from pynetdicom.dsutils import encode
from pynetdicom.events import Event
from pynetdicom.service_class import QueryRetrieveServiceClass
from pynetdicom.status import QR_GET_SERVICE_CLASS_STATUS, QR_MOVE_SERVICE_CLASS_STATUS

from minipacs import remote_aes, stats
from minipacs.db import DatabaseUnavailable, transaction
from minipacs.index.retrieve import MODELS, RetrieveKeyError, find_instances, retrieve_query
from minipacs.listener.operations import ListenerContext, peer, status_dataset, streaming_operation
from minipacs.queue import Destination, Job, JobInstance, JobQueue, Progress, Requestor
from minipacs.sender.send import (
    BUSY_LOOP_DELAY,
    Counts,
    enable_raw_sending,
    set_nodelay,
    store_file,
)
from minipacs.status import Status

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 5.0  # a pending response at least this often while a job waits
POLL_MS = 500
CANCEL_WAIT_SECONDS = 3.0  # for the sender to confirm a cancel
REDIS_LOST_SECONDS = 30.0
MAX_SUBOPERATIONS = 65535  # the Number of ... Suboperations elements are US

_MOVE_GET_UIDS = {uid for uid in MODELS}


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
        failed: list[str] = []
        idle_delay = self.assoc.dul._run_loop_delay
        self.assoc.dul._run_loop_delay = BUSY_LOOP_DELAY
        try:
            self._send_all(req, generator, respond, counts, failed)
        finally:
            self.assoc.dul._run_loop_delay = idle_delay

    def _send_all(
        self, req: Any, generator: Iterator, respond: Any, counts: Counts, failed: list[str]
    ) -> None:
        sent = 0
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


def handlers(ctx: ListenerContext, jobs: JobQueue) -> list[tuple]:
    """C-MOVE, C-GET, TCP_NODELAY on every connection, C-GET syntax order."""

    @streaming_operation(ctx, "c_move_count")
    def on_c_move(event: Event) -> Iterator:
        destination = event.move_destination or ""
        with transaction(ctx.pool) as conn:
            dest = remote_aes.get(conn, destination)
        if dest is None:
            log.warning("C-MOVE from %s: unknown destination %r", peer(event), destination)
            yield status_dataset(Status.MOVE_DESTINATION_UNKNOWN, f"unknown AE {destination}"), None
            return
        matches = _resolve(ctx, event)
        if isinstance(matches, Dataset):
            yield matches, None
            return
        log.info("C-MOVE from %s to %s: %d instances", peer(event), destination, len(matches))
        if not matches:
            yield Status.SUCCESS, Progress("done", 0)
            return
        requestor = event.assoc.requestor
        job = Job.new(
            Destination(dest.name, dest.host, dest.port),
            Requestor(requestor.ae_title, requestor.address, int(event.request.MessageID)),
            matches,
        )
        try:
            jobs.enqueue(job)
        except redis.RedisError as exc:
            log.error("C-MOVE from %s: cannot queue the job: %s", peer(event), exc)
            yield (
                status_dataset(
                    Status.OUT_OF_RESOURCES_SUBOPERATIONS, "job queue (Redis) unavailable"
                ),
                None,
            )
            return
        yield from relay_progress(jobs, job, event)

    @streaming_operation(ctx, "c_get_count")
    def on_c_get(event: Event) -> Iterator:
        matches = _resolve(ctx, event)
        if isinstance(matches, Dataset):
            yield matches, None
            return
        log.info("C-GET from %s: %d instances", peer(event), len(matches))
        yield len(matches)
        for inst in matches:
            yield Status.PENDING, (ctx.settings.storage_dir / inst.file_path, inst)

    return [
        (evt.EVT_C_MOVE, on_c_move),
        (evt.EVT_C_GET, on_c_get),
        (evt.EVT_CONN_OPEN, set_nodelay),
        (evt.EVT_REQUESTED, prefer_requested_syntaxes),
    ]


def _resolve(ctx: ListenerContext, event: Event) -> list[JobInstance] | Dataset:
    """The instances the identifier names, or the failure status to answer."""
    try:
        query = retrieve_query(event.identifier, str(event.request.AffectedSOPClassUID))
        with transaction(ctx.pool) as conn:
            rows = find_instances(conn, query)
    except RetrieveKeyError as exc:
        log.info("retrieve from %s: bad identifier: %s", peer(event), exc)
        return status_dataset(Status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, str(exc))
    except DatabaseUnavailable as exc:
        log.error("retrieve from %s: database unavailable: %s", peer(event), exc)
        return status_dataset(Status.OUT_OF_RESOURCES_MATCHES, "index database unavailable")
    except (ValueError, TypeError, AttributeError) as exc:  # undecodable identifier
        return status_dataset(Status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, f"identifier: {exc}")
    if len(rows) > MAX_SUBOPERATIONS:
        return status_dataset(
            Status.OUT_OF_RESOURCES_SUBOPERATIONS, f"{len(rows)} matches, at most 65535"
        )
    return [
        JobInstance(r.sop_instance_uid, r.sop_class_uid, r.transfer_syntax_uid, r.file_path)
        for r in rows
    ]


def relay_progress(jobs: JobQueue, job: Job, event: Event) -> Iterator:
    """Follow the job's progress stream: a pending response per change (and
    a keepalive while nothing happens), the final status when it ends.
    Returning early (requestor gone) leaves the job running."""
    last_id = "0"
    progress = Progress("running", len(job.instances))
    failed_uids: list[str] = []
    last_sent = time.monotonic()
    redis_lost_since: float | None = None
    while True:
        if event.is_cancelled:
            yield from _cancel(jobs, job, progress, failed_uids, last_id)
            return
        try:
            events = jobs.read_progress(job.id, last_id, POLL_MS)
            redis_lost_since = None
        except redis.RedisError as exc:
            now = time.monotonic()
            redis_lost_since = redis_lost_since or now
            if now - redis_lost_since > REDIS_LOST_SECONDS:
                log.error("C-MOVE job %s: lost the job queue: %s", job.id, exc)
                yield (
                    status_dataset(
                        Status.OUT_OF_RESOURCES_SUBOPERATIONS, "lost contact with the job queue"
                    ),
                    None,
                )
                return
            time.sleep(1.0)
            events = []
        for entry_id, update in events:
            last_id = entry_id
            progress = update
            failed_uids += update.failed_uids
        if progress.state == "done":
            final = final_status(Counts(0, progress.completed, progress.failed, progress.warning))
            log.info(
                "C-MOVE job %s: %s (%d completed, %d failed, %d warning)%s",
                job.id,
                final.name,
                progress.completed,
                progress.failed,
                progress.warning,
                f": {progress.comment}" if progress.comment else "",
            )
            yield final, _with_uids(progress, failed_uids)
            return
        if progress.state == "cancelled":
            yield Status.CANCEL, _with_uids(progress, failed_uids)
            return
        if events or time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
            last_sent = time.monotonic()
            yield Status.PENDING, progress


def _cancel(
    jobs: JobQueue, job: Job, progress: Progress, failed_uids: list[str], last_id: str
) -> Iterator:
    """Tell the sender to stop, wait briefly for its final counts, answer Cancel."""
    log.info("C-MOVE job %s: C-CANCEL received", job.id)
    try:
        jobs.cancel(job.id)
        deadline = time.monotonic() + CANCEL_WAIT_SECONDS
        while time.monotonic() < deadline and progress.state == "running":
            for entry_id, update in jobs.read_progress(job.id, last_id, POLL_MS):
                last_id, progress = entry_id, update
                failed_uids += update.failed_uids
    except redis.RedisError as exc:
        log.warning("C-MOVE job %s: could not signal the cancel: %s", job.id, exc)
    yield Status.CANCEL, _with_uids(progress, failed_uids)


def _with_uids(progress: Progress, failed_uids: list[str]) -> Progress:
    return Progress(
        progress.state,
        progress.remaining,
        progress.completed,
        progress.failed,
        progress.warning,
        progress.done,
        tuple(failed_uids),
        progress.comment,
    )
