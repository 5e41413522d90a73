"""`minipacs sender`: take move jobs from Redis, send them, acknowledge them.

Warm shutdown on the first SIGTERM/SIGINT (finish the current instance, leave
the job pending for another sender to reclaim, exit 0); cold on the second.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time

import redis

from minipacs import queue, stats
from minipacs.config import Settings
from minipacs.db import create_pool
from minipacs.queue import JobQueue
from minipacs.sender.send import SendSettings, enable_raw_sending, send_job

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_SECONDS = 5.0
TAKE_BLOCK_MS = 1000


class Lease:
    """Heartbeat, reclaim of dead senders' jobs, and keeping our own job's
    entry fresh, each when due; called between instances and while idle."""

    def __init__(self, client: redis.Redis, jobs: JobQueue, settings: Settings, consumer: str):
        self.client, self.jobs, self.settings, self.consumer = client, jobs, settings, consumer
        self.entry_id: str | None = None
        self.keep_interval = max(0.5, settings.job_reclaim_seconds / 3)
        self.reclaim_interval = max(0.5, settings.job_reclaim_seconds / 4)
        self.next_beat = self.next_keep = self.next_reclaim = 0.0

    def tick(self) -> bool:
        """False when the current job was taken over by another sender."""
        now = time.monotonic()
        try:
            if now >= self.next_beat:
                self.client.set(
                    queue.heartbeat_key(self.settings.redis_prefix),
                    self.consumer,
                    ex=queue.HEARTBEAT_TTL_SECONDS,
                )
                self.next_beat = now + HEARTBEAT_INTERVAL_SECONDS
            if self.entry_id and now >= self.next_keep:
                self.next_keep = now + self.keep_interval
                if not self.jobs.keep(self.consumer, self.entry_id):
                    log.warning("job entry %s was taken over by another sender", self.entry_id)
                    return False
            if now >= self.next_reclaim:
                self.next_reclaim = now + self.reclaim_interval
                for job in self.jobs.reclaim(
                    self.consumer, self.settings.job_reclaim_seconds, self.settings.job_max_attempts
                ):
                    log.warning(
                        "reclaimed job %s from a dead sender (attempt %d)", job.id, job.attempt
                    )
        except redis.RedisError as exc:
            log.warning("redis unavailable: %s", exc)
        return True


def run(settings: Settings) -> int:
    """Serve jobs until SIGTERM/SIGINT; return the exit code."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            log.warning("second signal: exiting at once; the current job will be reclaimed")
            os._exit(1)
        log.info("signal %d: finishing the current instance, then stopping", signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)

    enable_raw_sending()
    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
    )
    jobs = JobQueue(client, settings.redis_prefix)
    pool = create_pool(settings.database_url, 2, settings.db_timeout, "sender")
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    lease = Lease(client, jobs, settings, consumer)
    send_settings = SendSettings(
        ae_title=settings.ae_title,
        storage_dir=settings.storage_dir,
        connect_retries=settings.move_connect_retries,
        retry_delay=settings.move_retry_delay,
        connect_timeout=settings.move_connect_timeout,
        network_timeout=settings.network_timeout,
        max_pdu_size=settings.max_pdu_size,
    )
    log.info("sender %s started (redis %s)", consumer, settings.redis_url)
    group_ready = False
    while not stop.is_set():
        lease.tick()
        try:
            if not group_ready:
                jobs.ensure_group()
                group_ready = True
            taken = jobs.take(consumer, TAKE_BLOCK_MS)
        except redis.RedisError as exc:
            log.warning("redis unavailable: %s", exc)
            stop.wait(2.0)
            continue
        if taken is None:
            continue
        entry_id, job = taken
        lease.entry_id = entry_id
        try:
            _work(job, entry_id, jobs, send_settings, stop, lease, pool)
        except redis.RedisError as exc:
            log.warning("job %s: redis failed mid-job, leaving it for reclaim: %s", job.id, exc)
        finally:
            lease.entry_id = None
    pool.close()
    client.close()
    log.info("sender %s stopped", consumer)
    return 0


def _work(job, entry_id, jobs, send_settings, stop, lease, pool) -> None:
    log.info(
        "job %s: %d instances to %s for %s (attempt %d)",
        job.id,
        len(job.instances),
        job.destination.ae_title,
        job.requestor.ae_title,
        job.attempt,
    )
    started = time.monotonic()
    outcome, sent, failed = send_job(job, jobs, send_settings, stop, lease.tick)
    if outcome == "finished":
        jobs.finish(entry_id)
    if sent:
        stats.increment(pool, "instances_sent", sent)
    if failed:
        stats.increment(pool, "instances_failed", failed)
    log.info(
        "job %s: %s, %d sent, %d failed in %.1fs",
        job.id,
        outcome,
        sent,
        failed,
        time.monotonic() - started,
    )
