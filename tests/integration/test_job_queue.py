"""The move-job queue against a real Redis: delivery, reclaim, give up."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from minipacs.queue import Destination, Job, JobInstance, JobQueue, Progress, Requestor

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture()
def jobs() -> Iterator[JobQueue]:
    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"minipacs-test-{uuid.uuid4().hex[:8]}"
    queue = JobQueue(client, prefix)
    queue.ensure_group()
    yield queue
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


def make_job(n: int = 3) -> Job:
    return Job.new(
        Destination("DEST", "127.0.0.1", 11113),
        Requestor("SCU", "127.0.0.1", 1),
        [
            JobInstance(f"1.2.{i}", "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2", "x")
            for i in range(n)
        ],
    )


def test_one_consumer_gets_a_job_and_finishing_removes_it(jobs: JobQueue) -> None:
    job = make_job()
    jobs.enqueue(job)
    entry_id, taken = jobs.take("a", 100)
    assert taken == job
    assert jobs.take("b", 100) is None  # never delivered twice
    assert jobs.keep("a", entry_id)
    assert not jobs.keep("b", entry_id)
    jobs.finish(entry_id)
    assert jobs.client.xlen(jobs.stream) == 0


def test_a_dead_consumers_job_is_requeued_with_the_next_attempt(jobs: JobQueue) -> None:
    jobs.enqueue(make_job())
    entry_id, job = jobs.take("dead", 100)
    assert jobs.reclaim("alive", 60, 5) == []  # not idle long enough
    (requeued,) = jobs.reclaim("alive", 0, 5)
    assert requeued.id == job.id and requeued.attempt == 2
    assert not jobs.keep("dead", entry_id)  # the dead one lost it
    _, again = jobs.take("alive", 100)
    assert again.id == job.id and again.attempt == 2


def test_a_job_past_max_attempts_is_failed(jobs: JobQueue) -> None:
    job = make_job(3)
    jobs.enqueue(job)
    jobs.take("dead", 100)
    jobs.report(job.id, Progress("running", 2, 1, 0, 0, 1))
    (gave_up,) = jobs.reclaim("alive", 0, 1)
    assert gave_up.id == job.id
    last = jobs.last_progress(job.id)
    assert last.state == "done"
    assert (last.completed, last.failed) == (1, 2)
    assert set(last.failed_uids) == {"1.2.1", "1.2.2"}
    assert jobs.client.xlen(jobs.stream) == 0


def test_cancel_is_seen_when_reporting(jobs: JobQueue) -> None:
    job = make_job()
    assert jobs.report(job.id, Progress("running", 3)) is False
    jobs.cancel(job.id)
    assert jobs.report(job.id, Progress("running", 2, 1, 0, 0, 1)) is True
    events = jobs.read_progress(job.id, "0", 10)
    assert [p.remaining for _, p in events] == [3, 2]
