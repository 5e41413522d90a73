"""The C-STORE SCU of a move job: one association per job, files sent from
the volume as they are (never decoded), progress reported per instance."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.events import Event

from minipacs import reactors
from minipacs.queue import Job, JobInstance, JobQueue, Progress
from minipacs.sender.fastsend import NotApplicable, fast_store, release_reactor

log = logging.getLogger(__name__)

MAX_CONTEXTS = 128  # PS3.8: presentation context ids are odd numbers 1..255
REPORT_INTERVAL = 0.1  # seconds between progress events while sending
WARNING_STATUSES = {0xB000, 0xB006, 0xB007}


def enable_raw_sending() -> None:
    """Make `send_c_store(path)` stream the file's encoded dataset from disk
    instead of decoding and re-encoding it (pynetdicom's chunked mode), and
    let pynetdicom's threads wait for work instead of polling (reactors)."""
    _config.STORE_SEND_CHUNKED_DATASET = True
    reactors.install()


def on_connection(event: Event) -> None:
    """EVT_CONN_OPEN handler. pynetdicom never sets TCP_NODELAY, so every
    small PDU (a C-STORE command, the last fragment) waits ~40 ms on Nagle
    plus delayed ACK. The raw socket is `assoc.dul.socket.socket`. Each
    C-STORE response is read as soon as it arrives (reactors.prepare)."""
    reactors.prepare(event.assoc)
    sock = getattr(event.assoc.dul.socket, "socket", None)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            log.debug("could not set TCP_NODELAY: %s", exc)


def on_connection_closed(event: Event) -> None:
    reactors.release(event.assoc)


def is_uncompressed(ts: str) -> bool:
    uid = UID(ts)
    return uid.is_transfer_syntax and not uid.is_compressed and not uid.is_deflated


def proposed_contexts(instances: list[JobInstance]) -> list[tuple[str, list[str]]]:
    """A context per (SOP class, transfer syntax) in job order, offering the
    file's own syntax alone so it can go out byte for byte; plus, per SOP
    class with uncompressed files, one context with the uncompressed syntaxes
    as a fallback (pydicom re-encodes between those losslessly). Compressed
    files are never offered another syntax: we do not decode."""
    contexts: dict[tuple[str, str], list[str]] = {}
    for inst in instances:
        contexts.setdefault(
            (inst.sop_class_uid, inst.transfer_syntax_uid), [inst.transfer_syntax_uid]
        )
        if is_uncompressed(inst.transfer_syntax_uid):
            contexts.setdefault(
                (inst.sop_class_uid, "fallback"), [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
            )
    return [(sop, ts) for (sop, _), ts in contexts.items()][:MAX_CONTEXTS]


def store_file(
    assoc: Association,
    path: Path,
    inst: JobInstance,
    msg_id: int = 1,
    originator_aet: str | None = None,
    originator_id: int | None = None,
) -> int | None:
    """C-STORE one file; the response status, or None when nothing usable
    came back (no context for it, unreadable file, association lost)."""
    exact = next(
        (
            cx
            for cx in assoc.accepted_contexts
            if cx.abstract_syntax == inst.sop_class_uid
            and cx.transfer_syntax[0] == inst.transfer_syntax_uid
            and cx.as_scu
        ),
        None,
    )
    try:
        if exact is not None:
            try:
                return fast_store(
                    assoc,
                    path,
                    exact.context_id,
                    inst.sop_class_uid,
                    inst.sop_instance_uid,
                    msg_id,
                    originator_aet,
                    originator_id,
                )
            except NotApplicable:
                pass
            payload: Path | object = path  # streamed from disk, not decoded
        elif is_uncompressed(inst.transfer_syntax_uid) and any(
            cx.abstract_syntax == inst.sop_class_uid
            and is_uncompressed(cx.transfer_syntax[0])
            and cx.as_scu
            for cx in assoc.accepted_contexts
        ):
            payload = dcmread(path)  # re-encoded in the accepted uncompressed syntax
        else:
            log.warning(
                "no accepted presentation context for %s in %s",
                inst.sop_instance_uid,
                UID(inst.transfer_syntax_uid).name,
            )
            return None
        status = assoc.send_c_store(
            payload,
            msg_id=msg_id,
            originator_aet=originator_aet,
            originator_id=originator_id,
        )
    except (OSError, ValueError, AttributeError, RuntimeError) as exc:
        log.warning("C-STORE of %s failed: %s", inst.sop_instance_uid, exc)
        return None
    return int(status.Status) if "Status" in status else None


class LostJob(Exception):
    """Another sender took the job over (we stalled past the reclaim time)."""


@dataclass
class Counts:
    remaining: int
    completed: int = 0
    failed: int = 0
    warning: int = 0
    done: int = 0

    def add(self, status: int | None) -> bool:
        """Count one sub-operation; True when it failed."""
        self.remaining -= 1
        self.done += 1
        if status == 0:
            self.completed += 1
        elif status in WARNING_STATUSES:
            self.warning += 1
        else:
            self.failed += 1
            return True
        return False

    def event(self, state: str, failed_uids: tuple[str, ...] = (), comment: str = "") -> Progress:
        return Progress(
            state,
            self.remaining,
            self.completed,
            self.failed,
            self.warning,
            self.done,
            failed_uids,
            comment,
        )


@dataclass(frozen=True)
class SendSettings:
    ae_title: str
    storage_dir: Path
    connect_retries: int
    retry_delay: float
    connect_timeout: float
    network_timeout: float
    max_pdu_size: int


def send_job(
    job: Job,
    jobs: JobQueue,
    settings: SendSettings,
    stop: threading.Event,
    tick: Callable[[], bool],
) -> tuple[str, int, int]:
    """Send what is left of `job` (resuming after a dead sender's last event).
    Returns (outcome, sent, failed) with outcome `finished` (ack it),
    `stopped` (SIGTERM: leave it for reclaim) or `lost` (reclaimed elsewhere)."""
    last = jobs.last_progress(job.id)
    if last is not None and last.state != "running":
        return "finished", 0, 0  # a previous sender finished it but died before acking
    counts = Counts(len(job.instances))
    if last is not None:
        counts = Counts(last.remaining, last.completed, last.failed, last.warning, last.done)
    pending = list(job.instances[counts.done :])
    if jobs.is_cancelled(job.id):
        jobs.report(job.id, counts.event("cancelled"))
        return "finished", 0, 0

    try:
        assoc = _associate(job, pending, settings, stop, tick)
    except LostJob:
        return "lost", 0, 0
    if assoc is None:
        if stop.is_set():
            return "stopped", 0, 0
        for _ in pending:
            counts.add(None)
        uids = tuple(i.sop_instance_uid for i in pending)
        comment = f"cannot associate with {job.destination.ae_title}"
        jobs.report(job.id, counts.event("done", uids, comment))
        return "finished", 0, len(pending)

    sent = failed = 0
    outcome = "finished"
    new_failures: list[str] = []
    next_report = 0.0
    try:
        for n, inst in enumerate(pending):
            if stop.is_set():
                outcome = "stopped"
                break
            if not tick():
                outcome = "lost"
                break
            status = None
            if assoc.is_established:
                status = store_file(
                    assoc,
                    settings.storage_dir / inst.file_path,
                    inst,
                    msg_id=n % 65535 + 1,
                    originator_aet=job.requestor.ae_title,
                    originator_id=job.requestor.message_id,
                )
            if counts.add(status):
                failed += 1
                new_failures.append(inst.sop_instance_uid)
            else:
                sent += 1
            # Progress (and the cancel check riding on it) at most every
            # REPORT_INTERVAL: one Redis round trip per instance would cost
            # more than the C-STORE itself on a fast network.
            if time.monotonic() >= next_report or counts.remaining == 0:
                next_report = time.monotonic() + REPORT_INTERVAL
                cancelled = jobs.report(job.id, counts.event("running", tuple(new_failures)))
                new_failures.clear()
                if cancelled:
                    log.info("job %s cancelled after %d instances", job.id, counts.done)
                    jobs.report(job.id, counts.event("cancelled"))
                    return "finished", sent, failed
        else:
            jobs.report(job.id, counts.event("done", tuple(new_failures)))
            new_failures.clear()
        if new_failures or outcome == "stopped":
            # Record exactly where we stopped so the next sender resumes there.
            jobs.report(job.id, counts.event("running", tuple(new_failures)))
    finally:
        release_reactor(assoc)
        if assoc.is_established:
            assoc.release()
    return outcome, sent, failed


def _associate(
    job: Job,
    pending: list[JobInstance],
    settings: SendSettings,
    stop: threading.Event,
    tick: Callable[[], bool],
) -> Association | None:
    """Associate with the destination, retrying connection failures with
    exponential backoff; a rejection is final."""
    ae = AE(ae_title=settings.ae_title)
    ae.connection_timeout = settings.connect_timeout
    ae.acse_timeout = settings.connect_timeout
    ae.dimse_timeout = settings.network_timeout
    ae.network_timeout = settings.network_timeout
    ae.maximum_pdu_size = settings.max_pdu_size
    for sop_class, syntaxes in proposed_contexts(pending):
        ae.add_requested_context(sop_class, syntaxes)
    dest = job.destination
    delay = settings.retry_delay
    for attempt in range(settings.connect_retries + 1):
        assoc = ae.associate(
            dest.host,
            dest.port,
            ae_title=dest.ae_title,
            evt_handlers=[
                (evt.EVT_CONN_OPEN, on_connection),
                (evt.EVT_CONN_CLOSE, on_connection_closed),
            ],
        )
        if assoc.is_established:
            log.info(
                "job %s: associated with %s@%s:%d (attempt %d)",
                job.id,
                dest.ae_title,
                dest.host,
                dest.port,
                attempt + 1,
            )
            return assoc
        if assoc.is_rejected:
            log.warning("job %s: %s rejected the association", job.id, dest.ae_title)
            return None
        log.warning(
            "job %s: cannot reach %s@%s:%d (attempt %d of %d)",
            job.id,
            dest.ae_title,
            dest.host,
            dest.port,
            attempt + 1,
            settings.connect_retries + 1,
        )
        if attempt == settings.connect_retries:
            break
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            if stop.wait(min(0.5, max(0.0, deadline - time.monotonic()))):
                return None
            if not tick():
                raise LostJob(job.id)
        delay *= 2
    return None
