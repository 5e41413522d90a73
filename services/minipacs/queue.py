"""Move jobs on Redis, and every Redis key name in one place.

Layout (all readable with `redis-cli`, prefix = PACS_REDIS_PREFIX):

- `<prefix>:move:jobs` — stream of pending jobs, consumer group `senders`.
  Each entry has one field `job`: the job as JSON. A sender reads with
  XREADGROUP, keeps the entry pending while it works (refreshing its idle time
  with XCLAIM), and XACK+XDELs it when done, so XLEN is the backlog.
  An entry left pending longer than PACS_JOB_RECLAIM_SECONDS (its sender
  died) is taken with XAUTOCLAIM and queued again with `attempt` + 1.
- `<prefix>:move:job:<id>:progress` — stream of progress events written by the
  sender and read (XREAD BLOCK) by the listener relaying C-MOVE pending
  responses. The last event also tells a reclaiming sender where to resume.
- `<prefix>:move:job:<id>:cancel` — set by the listener on C-CANCEL.
- `<prefix>:sender:<host>:heartbeat` — set by a running sender, with a TTL.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field

import redis

HEARTBEAT_TTL_SECONDS = 30
GROUP = "senders"
JOB_TTL_SECONDS = 24 * 3600  # progress and cancel keys outlive any requestor


def heartbeat_key(prefix: str, host: str | None = None) -> str:
    """Set by a running sender with a TTL; its health check reads it."""
    return f"{prefix}:sender:{host or socket.gethostname()}:heartbeat"


def jobs_key(prefix: str) -> str:
    return f"{prefix}:move:jobs"


def progress_key(prefix: str, job_id: str) -> str:
    return f"{prefix}:move:job:{job_id}:progress"


def cancel_key(prefix: str, job_id: str) -> str:
    return f"{prefix}:move:job:{job_id}:cancel"


@dataclass(frozen=True)
class Destination:
    ae_title: str
    host: str
    port: int


@dataclass(frozen=True)
class Requestor:
    ae_title: str
    address: str
    message_id: int  # the C-MOVE's, echoed as Move Originator Message ID


@dataclass(frozen=True)
class JobInstance:
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    file_path: str  # relative to PACS_STORAGE_DIR


@dataclass(frozen=True)
class Job:
    id: str
    destination: Destination
    requestor: Requestor
    instances: tuple[JobInstance, ...]
    attempt: int = 1
    created_at: float = field(default_factory=time.time)

    @staticmethod
    def new(destination: Destination, requestor: Requestor, instances: list[JobInstance]) -> Job:
        return Job(uuid.uuid4().hex, destination, requestor, tuple(instances))

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @staticmethod
    def from_json(text: str | bytes) -> Job:
        data = json.loads(text)
        return Job(
            id=data["id"],
            destination=Destination(**data["destination"]),
            requestor=Requestor(**data["requestor"]),
            instances=tuple(JobInstance(**i) for i in data["instances"]),
            attempt=int(data["attempt"]),
            created_at=float(data["created_at"]),
        )


@dataclass(frozen=True)
class Progress:
    """One progress event. Counts are cumulative over the whole job; `done`
    is how many instances (in job order) are finished; `failed_uids` lists
    only the instances that failed since the previous event."""

    state: str  # running | done | cancelled
    remaining: int
    completed: int = 0
    failed: int = 0
    warning: int = 0
    done: int = 0
    failed_uids: tuple[str, ...] = ()
    comment: str = ""

    def fields(self) -> dict[str, str]:
        data = asdict(self)
        data["failed_uids"] = json.dumps(list(self.failed_uids))
        return {k: str(v) for k, v in data.items()}

    @staticmethod
    def from_fields(raw: dict) -> Progress:
        data = {_s(k): _s(v) for k, v in raw.items()}
        return Progress(
            state=data["state"],
            remaining=int(data["remaining"]),
            completed=int(data["completed"]),
            failed=int(data["failed"]),
            warning=int(data["warning"]),
            done=int(data["done"]),
            failed_uids=tuple(json.loads(data.get("failed_uids", "[]"))),
            comment=data.get("comment", ""),
        )


class JobQueue:
    """The move-job stream, its consumer group, and per-job progress/cancel."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.stream = jobs_key(prefix)

    # -- listener side ------------------------------------------------------
    def enqueue(self, job: Job) -> None:
        self.client.xadd(self.stream, {"job": job.to_json()})

    def read_progress(self, job_id: str, last_id: str, block_ms: int) -> list[tuple[str, Progress]]:
        """Progress events after `last_id`, waiting up to `block_ms` for one."""
        reply = self.client.xread({progress_key(self.prefix, job_id): last_id}, block=block_ms)
        events = []
        for _stream, entries in reply or []:
            for entry_id, raw in entries:
                events.append((_s(entry_id), Progress.from_fields(raw)))
        return events

    def cancel(self, job_id: str) -> None:
        self.client.set(cancel_key(self.prefix, job_id), "1", ex=JOB_TTL_SECONDS)

    # -- sender side --------------------------------------------------------
    def ensure_group(self) -> None:
        """Create the stream and group; id 0 so jobs queued before any sender
        ever ran are delivered too."""
        try:
            self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def take(self, consumer: str, block_ms: int) -> tuple[str, Job] | None:
        reply = self.client.xreadgroup(GROUP, consumer, {self.stream: ">"}, count=1, block=block_ms)
        for _stream, entries in reply or []:
            for entry_id, raw in entries:
                return _s(entry_id), Job.from_json(raw[b"job"])
        return None

    def keep(self, consumer: str, entry_id: str) -> bool:
        """Reset the entry's idle time so no other sender reclaims it while we
        work; False when it is no longer ours (reclaimed and re-queued)."""
        owner = self.client.xpending_range(self.stream, GROUP, entry_id, entry_id, 1)
        if not owner or _s(owner[0]["consumer"]) != consumer:
            return False
        return bool(self.client.xclaim(self.stream, GROUP, consumer, 0, [entry_id], justid=True))

    def finish(self, entry_id: str) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.xack(self.stream, GROUP, entry_id)
        pipe.xdel(self.stream, entry_id)
        pipe.execute()

    def reclaim(self, consumer: str, min_idle_seconds: float, max_attempts: int) -> list[Job]:
        """Re-queue jobs whose sender stopped working on them; a job past
        `max_attempts` is finished as failed instead. Returns the jobs touched."""
        reply = self.client.xautoclaim(
            self.stream, GROUP, consumer, int(min_idle_seconds * 1000), "0-0", count=10
        )
        touched = []
        for entry_id, raw in reply[1]:
            if not raw:  # deleted while pending
                self.client.xack(self.stream, GROUP, entry_id)
                continue
            job = Job.from_json(raw[b"job"])
            retry = Job(
                job.id,
                job.destination,
                job.requestor,
                job.instances,
                job.attempt + 1,
                job.created_at,
            )
            if retry.attempt > max_attempts:
                self.give_up(job, f"gave up after {job.attempt} attempts")
                self.finish(_s(entry_id))
            else:
                pipe = self.client.pipeline(transaction=True)
                pipe.xadd(self.stream, {"job": retry.to_json()})
                pipe.xack(self.stream, GROUP, entry_id)
                pipe.xdel(self.stream, entry_id)
                pipe.execute()
            touched.append(retry)
        return touched

    def give_up(self, job: Job, comment: str) -> None:
        last = self.last_progress(job.id) or Progress("running", len(job.instances))
        rest = job.instances[last.done :]
        self.report(
            job.id,
            Progress(
                "done",
                0,
                last.completed,
                last.failed + len(rest),
                last.warning,
                len(job.instances),
                tuple(i.sop_instance_uid for i in rest),
                comment,
            ),
        )

    def last_progress(self, job_id: str) -> Progress | None:
        entries = self.client.xrevrange(progress_key(self.prefix, job_id), count=1)
        return Progress.from_fields(entries[0][1]) if entries else None

    def report(self, job_id: str, progress: Progress) -> bool:
        """Append a progress event; returns whether the job was cancelled
        (one round trip for both)."""
        key = progress_key(self.prefix, job_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(key, progress.fields())
        pipe.expire(key, JOB_TTL_SECONDS)
        pipe.exists(cancel_key(self.prefix, job_id))
        return bool(pipe.execute()[2])

    def is_cancelled(self, job_id: str) -> bool:
        return bool(self.client.exists(cancel_key(self.prefix, job_id)))


def _s(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
