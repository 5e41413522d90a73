"""C-MOVE and C-GET in the listener.

pynetdicom's built-in C-MOVE opens the sub-association itself. Ours does not:
the listener resolves the matches, queues one job on Redis for a sender worker
and relays the worker's progress as pending responses. `RetrieveServiceClass`
(retrieve_scp.py) is the protocol side (responses, counts, C-CANCEL, a
requestor that goes away) for the MOVE and GET SOP classes; the handlers
below are the archive side.

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

import redis
from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.events import Event

from minipacs import remote_aes
from minipacs.db import DatabaseUnavailable, transaction
from minipacs.index.retrieve import RetrieveKeyError, find_instances, retrieve_query
from minipacs.listener.operations import ListenerContext, peer, status_dataset, streaming_operation
from minipacs.listener.retrieve_scp import (
    RetrieveServiceClass,
    final_status,
    install,
    prefer_requested_syntaxes,
)
from minipacs.queue import Destination, Job, JobInstance, JobQueue, Progress, Requestor
from minipacs.sender.send import Counts
from minipacs.status import Status

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 5.0  # a pending response at least this often while a job waits
POLL_MS = 500
CANCEL_WAIT_SECONDS = 3.0  # for the sender to confirm a cancel
REDIS_LOST_SECONDS = 30.0
MAX_SUBOPERATIONS = 65535  # the Number of ... Suboperations elements are US

__all__ = ["RetrieveServiceClass", "final_status", "handlers", "install"]


def handlers(ctx: ListenerContext, jobs: JobQueue) -> list[tuple]:
    """C-MOVE, C-GET, and the C-GET syntax order (TCP_NODELAY on accepted
    connections is set by listener/server.py)."""

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
