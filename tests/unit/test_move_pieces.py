"""Pure parts of C-MOVE/C-GET: job JSON, proposed contexts, final status."""

from __future__ import annotations

import json

from pydicom.uid import (
    JPEG2000,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
)

from minipacs.listener.retrieve import final_status
from minipacs.queue import Destination, Job, JobInstance, Progress, Requestor
from minipacs.sender.send import Counts, proposed_contexts
from minipacs.status import Status


def instance(n: int, sop: str = CTImageStorage, ts: str = ExplicitVRLittleEndian) -> JobInstance:
    return JobInstance(f"1.2.3.{n}", sop, ts, f"1.2/1.2.3/1.2.3.{n}.dcm")


def test_job_is_plain_json_and_round_trips() -> None:
    job = Job.new(
        Destination("DEST_SCP", "host.docker.internal", 11113),
        Requestor("MOVESCU", "10.0.0.5", 7),
        [instance(1), instance(2)],
    )
    data = json.loads(job.to_json())
    assert data["attempt"] == 1
    assert data["destination"]["ae_title"] == "DEST_SCP"
    assert data["instances"][1]["sop_instance_uid"] == "1.2.3.2"
    assert Job.from_json(job.to_json()) == job


def test_progress_round_trips_through_stream_fields() -> None:
    progress = Progress("running", 3, 2, 1, 0, 3, ("1.2.3.9",), "x")
    raw = {k.encode(): v.encode() for k, v in progress.fields().items()}
    assert Progress.from_fields(raw) == progress


def test_contexts_offer_own_syntax_and_uncompressed_fallback_only_when_uncompressed() -> None:
    contexts = proposed_contexts(
        [instance(1), instance(2, ts=ImplicitVRLittleEndian), instance(3, MRImageStorage, JPEG2000)]
    )
    assert (CTImageStorage, [ExplicitVRLittleEndian]) in contexts
    assert (CTImageStorage, [ImplicitVRLittleEndian]) in contexts
    assert (CTImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian]) in contexts
    assert (MRImageStorage, [JPEG2000]) in contexts
    assert len(contexts) == 4  # MR has no uncompressed fallback: we never decode


def test_final_status() -> None:
    assert final_status(Counts(0, 3)) == Status.SUCCESS
    assert final_status(Counts(0, 0, 0)) == Status.SUCCESS
    assert final_status(Counts(0, 2, 1)) == Status.WARNING_SUBOPERATIONS_FAILED
    assert final_status(Counts(0, 2, 0, 1)) == Status.WARNING_SUBOPERATIONS_FAILED
    assert final_status(Counts(0, 0, 3)) == Status.OUT_OF_RESOURCES_SUBOPERATIONS


def test_counts() -> None:
    counts = Counts(3)
    assert counts.add(0) is False
    assert counts.add(0xB000) is False
    assert counts.add(None) is True
    assert (counts.remaining, counts.completed, counts.warning, counts.failed, counts.done) == (
        0,
        1,
        1,
        1,
        3,
    )
