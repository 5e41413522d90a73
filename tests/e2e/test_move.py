"""C-MOVE as a user does it: movescu to a storescp, through the sender worker."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.e2e.destination import (
    Abandon,
    CountingSCP,
    StoreSCP,
    assert_delivered,
    move_with_pynetdicom,
    settle,
    start_storescp,
    store_study,
)
from tests.helpers import Pacs, Process, c_echo, dcmtk, free_port, wait_until


@pytest.fixture()
def dest(tmp_path: Path) -> StoreSCP:
    scp = start_storescp(tmp_path / "received")
    yield scp
    scp.stop()


@pytest.fixture(scope="module")
def sender(pacs: Pacs, start_sender: Callable[..., Process]) -> Process:
    return start_sender(pacs)


def movescu(pacs: Pacs, dest_ae: str, *keys: str, model: str = "-S", timeout: float = 90):
    args = ["-v", "-aec", pacs.ae_title, "-aem", dest_ae, model]
    for key in keys:
        args += ["-k", key]
    return dcmtk("movescu", *args, pacs.host, str(pacs.port), timeout=timeout)


def test_seed_move_verbatim(pacs: Pacs, sender: Process, dest: StoreSCP, tmp_path: Path) -> None:
    study = store_study(pacs, tmp_path, "MOVE001")
    before = pacs.settled_counters()
    assert pacs.minipacs("ae", "add", "DEST_SCP", "127.0.0.1", str(dest.port)).returncode == 0
    result = dcmtk(
        "movescu",
        "-v",
        "-aec",
        pacs.ae_title,
        "-aem",
        "DEST_SCP",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study.study_uid}",
        pacs.host,
        str(pacs.port),
        timeout=90,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Received Final Move Response (Success)" in output, output
    assert_delivered(dest, study.files)
    pacs.wait_counted(before, c_move_count=1, instances_sent=len(study.files))


def register(pacs: Pacs, name: str, port: int, host: str = "127.0.0.1") -> None:
    result = pacs.minipacs("ae", "add", name, host, str(port))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("level", ["PATIENT", "STUDY", "SERIES", "IMAGE"])
def test_every_level(
    pacs: Pacs, sender: Process, dest: StoreSCP, tmp_path: Path, level: str
) -> None:
    study = store_study(pacs, tmp_path, f"LEVEL_{level}")
    register(pacs, "DEST_SCP", dest.port)
    uids = list(study.files)
    first_series = set(uids[:3])  # store_study writes series by series, 3 each
    if level == "PATIENT":
        keys, model, wanted = (
            ["QueryRetrieveLevel=PATIENT", f"PatientID={study.patient_id}"],
            "-P",
            uids,
        )
    elif level == "STUDY":
        keys, model, wanted = (
            ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study.study_uid}"],
            "-S",
            uids,
        )
    elif level == "SERIES":
        series_uid = study.series_uids[0]
        keys = [
            "QueryRetrieveLevel=SERIES",
            f"StudyInstanceUID={study.study_uid}",
            f"SeriesInstanceUID={series_uid}",
        ]
        model, wanted = "-S", [u for u in uids if u in first_series]
    else:
        keys = [
            "QueryRetrieveLevel=IMAGE",
            f"StudyInstanceUID={study.study_uid}",
            f"SeriesInstanceUID={study.series_uids[0]}",
            f"SOPInstanceUID={uids[0]}\\{uids[2]}",
        ]
        model, wanted = "-S", [uids[0], uids[2]]
    result = movescu(pacs, "DEST_SCP", *keys, model=model)
    output = result.stdout + result.stderr
    assert "Received Final Move Response (Success)" in output, output
    assert_delivered(dest, {u: study.files[u] for u in wanted})
    assert set(dest.received()) == set(wanted)


def test_unknown_destination_is_refused_at_once(pacs: Pacs, tmp_path: Path) -> None:
    study = store_study(pacs, tmp_path, "UNKNOWN_DEST", series=1, per_series=1)
    started = time.monotonic()
    result = movescu(
        pacs,
        "NOBODY",
        "QueryRetrieveLevel=STUDY",
        f"StudyInstanceUID={study.study_uid}",
        timeout=30,
    )
    output = result.stdout + result.stderr
    assert "Received Final Move Response (Refused: MoveDestinationUnknown)" in output, output
    assert time.monotonic() - started < 10


def test_unreachable_destination_fails_in_bounded_time(
    pacs: Pacs, sender: Process, tmp_path: Path
) -> None:
    study = store_study(pacs, tmp_path, "UNREACHABLE", series=1, per_series=2)
    register(pacs, "DEAD_SCP", free_port())  # nothing listens there
    started = time.monotonic()
    responses = move_with_pynetdicom(pacs, "DEAD_SCP", _study_identifier(study.study_uid))
    elapsed = time.monotonic() - started
    status, rsp, ident = responses[-1]
    assert status == 0xA702, responses
    assert rsp.NumberOfFailedSuboperations == 2
    assert rsp.NumberOfCompletedSuboperations == 0
    assert set(ident.FailedSOPInstanceUIDList) == set(study.files)
    assert elapsed < 30


def test_zero_matches_is_success_with_zero_counts(pacs: Pacs, dest: StoreSCP) -> None:
    register(pacs, "DEST_SCP", dest.port)
    responses = move_with_pynetdicom(pacs, "DEST_SCP", _study_identifier(generate_uid()))
    assert len(responses) == 1
    status, rsp, _ = responses[0]
    assert status == 0x0000
    assert rsp.NumberOfCompletedSuboperations == 0
    assert rsp.NumberOfFailedSuboperations == 0


def _study_identifier(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    return ds


def _isolated(start_listener: Callable[..., Pacs], **settings: str) -> Pacs:
    """A listener with its own Redis queue (no sender unless a test starts one)."""
    return start_listener(PACS_REDIS_PREFIX=f"minipacs-test-{uuid.uuid4().hex[:8]}", **settings)


def test_move_waits_for_a_sender_and_completes_when_one_starts(
    start_listener: Callable[..., Pacs],
    start_sender: Callable[..., Process],
    dest: StoreSCP,
    tmp_path: Path,
) -> None:
    pacs = _isolated(start_listener)
    study = store_study(pacs, tmp_path, "NOSENDER")
    register(pacs, "DEST_SCP", dest.port)
    pending: list[int] = []

    def start_sender_after_first_pending(assoc, status) -> None:
        if status.Status == 0xFF00:
            pending.append(1)
            if len(pending) == 1:
                start_sender(pacs)

    responses = move_with_pynetdicom(
        pacs, "DEST_SCP", _study_identifier(study.study_uid), start_sender_after_first_pending
    )
    assert responses[-1][0] == 0x0000, responses
    assert pending, "no pending response while waiting for a sender"
    assert_delivered(dest, study.files)


def test_c_cancel_stops_the_job(
    start_listener: Callable[..., Pacs],
    start_sender: Callable[..., Process],
    dest: StoreSCP,
    tmp_path: Path,
) -> None:
    pacs = _isolated(start_listener)
    study = store_study(pacs, tmp_path, "CANCEL")
    register(pacs, "DEST_SCP", dest.port)

    def cancel_on_first_pending(assoc, status) -> None:
        if status.Status == 0xFF00:
            cx = assoc.accepted_contexts[0]
            assoc.send_c_cancel(1, cx.context_id)

    responses = move_with_pynetdicom(
        pacs, "DEST_SCP", _study_identifier(study.study_uid), cancel_on_first_pending
    )
    status, rsp, _ = responses[-1]
    assert status == 0xFE00, responses
    assert rsp.NumberOfRemainingSuboperations == len(study.files)
    assert rsp.NumberOfCompletedSuboperations == 0
    # A sender starting now finds the job cancelled and sends nothing.
    sender = start_sender(pacs)
    wait_until(
        lambda: "cancelled" in sender.log() or "finished" in sender.log(),
        20,
        "the sender to drop the cancelled job",
    )
    assert dest.received() == {}


def test_killed_sender_job_is_finished_by_another(
    start_listener: Callable[..., Pacs],
    start_sender: Callable[..., Process],
    tmp_path: Path,
) -> None:
    pacs = _isolated(start_listener)
    study = store_study(pacs, tmp_path, "KILLED", series=2, per_series=30)
    slow = CountingSCP("SLOW_SCP", delay=0.05)
    try:
        register(pacs, "SLOW_SCP", slow.port)
        first = start_sender(pacs, PACS_JOB_RECLAIM_SECONDS="2")
        state = {"killed": False}

        def kill_mid_job(assoc, status) -> None:
            if not state["killed"] and getattr(status, "NumberOfCompletedSuboperations", 0) >= 5:
                first.stop(signal.SIGKILL)
                state["killed"] = True
                start_sender(pacs, PACS_JOB_RECLAIM_SECONDS="2")

        responses = move_with_pynetdicom(
            pacs, "SLOW_SCP", _study_identifier(study.study_uid), kill_mid_job, timeout=90
        )
        assert state["killed"]
        status, rsp, _ = responses[-1]
        assert status == 0x0000, responses
        assert rsp.NumberOfCompletedSuboperations == len(study.files)
        assert set(slow.received) == set(study.files)
        # At most the instance in flight at the kill went twice.
        assert sum(slow.received.values()) <= len(study.files) + 1
    finally:
        slow.stop()


def test_two_senders_share_jobs_without_duplicates(
    start_listener: Callable[..., Pacs],
    start_sender: Callable[..., Process],
    tmp_path: Path,
) -> None:
    pacs = _isolated(start_listener)
    studies = [
        store_study(pacs, tmp_path / str(n), f"SHARE{n}", series=1, per_series=5) for n in range(4)
    ]
    slow = CountingSCP("SHARE_SCP", delay=0.05)
    try:
        register(pacs, "SHARE_SCP", slow.port)
        senders = [start_sender(pacs), start_sender(pacs)]
        with ThreadPoolExecutor(4) as pool:
            results = list(
                pool.map(
                    lambda s: move_with_pynetdicom(
                        pacs, "SHARE_SCP", _study_identifier(s.study_uid)
                    ),
                    studies,
                )
            )
        assert all(r[-1][0] == 0x0000 for r in results)
        every = {uid for s in studies for uid in s.files}
        assert set(slow.received) == every
        assert all(n == 1 for n in slow.received.values()), slow.received
        for sender in senders:
            assert ": finished," in sender.log(), sender.log()
    finally:
        slow.stop()


def test_move_without_redis_fails_fast_and_other_services_work(
    start_listener: Callable[..., Pacs], tmp_path: Path, dest: StoreSCP
) -> None:
    pacs = start_listener(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    study = store_study(pacs, tmp_path, "NOREDIS", series=1, per_series=1)
    register(pacs, "DEST_SCP", dest.port)
    started = time.monotonic()
    responses = move_with_pynetdicom(pacs, "DEST_SCP", _study_identifier(study.study_uid))
    assert time.monotonic() - started < 10
    assert responses[-1][0] == 0xA702, responses
    assert c_echo(pacs.host, pacs.port, pacs.ae_title)


def test_sigterm_finishes_the_instance_and_leaves_the_job(
    start_listener: Callable[..., Pacs],
    start_sender: Callable[..., Process],
    tmp_path: Path,
) -> None:
    pacs = _isolated(start_listener)
    study = store_study(pacs, tmp_path, "SIGTERM", series=1, per_series=30)
    slow = CountingSCP("TERM_SCP", delay=0.05)
    try:
        register(pacs, "TERM_SCP", slow.port)
        first = start_sender(pacs, PACS_JOB_RECLAIM_SECONDS="2")
        state: dict[str, int] = {}

        def term_mid_job(assoc, status) -> None:
            if "code" not in state and getattr(status, "NumberOfCompletedSuboperations", 0) >= 3:
                state["code"] = first.stop(signal.SIGTERM, timeout=10)
                start_sender(pacs, PACS_JOB_RECLAIM_SECONDS="2")

        responses = move_with_pynetdicom(
            pacs, "TERM_SCP", _study_identifier(study.study_uid), term_mid_job, timeout=90
        )
        assert state["code"] == 0, first.log()
        assert responses[-1][0] == 0x0000, responses
        assert set(slow.received) == set(study.files)
        assert sum(slow.received.values()) == len(study.files)  # nothing sent twice
    finally:
        slow.stop()


def test_job_completes_when_the_requestor_goes_away(
    pacs: Pacs, sender: Process, tmp_path: Path
) -> None:
    study = store_study(pacs, tmp_path, "DROPPED", series=1, per_series=20)
    slow = CountingSCP("DROP_SCP", delay=0.05)
    try:
        register(pacs, "DROP_SCP", slow.port)

        def abort_on_first_pending(assoc, status) -> None:
            if status.Status == 0xFF00:
                raise Abandon

        move_with_pynetdicom(
            pacs, "DROP_SCP", _study_identifier(study.study_uid), abort_on_first_pending
        )
        assert slow.count() < len(study.files)  # the requestor left mid-job
        wait_until(lambda: slow.count() == len(study.files), 30, "the job to complete")
    finally:
        slow.stop()


def test_c_cancel_mid_job_stops_the_sender(pacs: Pacs, sender: Process, tmp_path: Path) -> None:
    study = store_study(pacs, tmp_path, "CANCELMID", series=1, per_series=60)
    slow = CountingSCP("MID_SCP", delay=0.05)
    try:
        register(pacs, "MID_SCP", slow.port)
        sent_cancel: list[int] = []

        def cancel_once_started(assoc, status) -> None:
            completed = getattr(status, "NumberOfCompletedSuboperations", 0)
            if not sent_cancel and status.Status == 0xFF00 and completed >= 3:
                assoc.send_c_cancel(1, assoc.accepted_contexts[0].context_id)
                sent_cancel.append(completed)

        responses = move_with_pynetdicom(
            pacs, "MID_SCP", _study_identifier(study.study_uid), cancel_once_started
        )
        status, rsp, _ = responses[-1]
        assert status == 0xFE00, responses
        assert rsp.NumberOfRemainingSuboperations > 0
        assert rsp.NumberOfCompletedSuboperations >= sent_cancel[0]
        delivered = slow.count()
        assert delivered < len(study.files)
        # The job really stopped: nothing more arrives.
        settle(1.0)
        assert slow.count() <= delivered + 1
    finally:
        slow.stop()


def _move_to(pacs: Pacs, scp: CountingSCP, study_uid: str) -> list:
    """C-MOVE a study to a test-process SCP, which is stopped afterwards."""
    try:
        register(pacs, scp.ae_title, scp.port)
        return move_with_pynetdicom(pacs, scp.ae_title, _study_identifier(study_uid))
    finally:
        scp.stop()


def test_failures_at_the_destination_are_counted_and_listed(
    pacs: Pacs, sender: Process, tmp_path: Path
) -> None:
    study = store_study(pacs, tmp_path, "DESTFAILS", series=1, per_series=12)
    scp = CountingSCP("FAILING_SCP", fail_every=3)
    responses = _move_to(pacs, scp, study.study_uid)
    status, rsp, identifier = responses[-1]
    assert status == 0xB000, responses
    assert len(scp.failed) == 4
    assert rsp.NumberOfFailedSuboperations == 4
    assert rsp.NumberOfCompletedSuboperations == 8
    assert set(identifier.FailedSOPInstanceUIDList) == set(scp.failed)


def test_destination_aborting_mid_job_fails_the_rest_and_the_sender_goes_on(
    pacs: Pacs, sender: Process, dest: StoreSCP, tmp_path: Path
) -> None:
    study = store_study(pacs, tmp_path, "DESTABORTS", series=1, per_series=12)
    responses = _move_to(pacs, CountingSCP("ABORTING_SCP", abort_at=5), study.study_uid)
    status, rsp, identifier = responses[-1]
    assert status == 0xB000, responses
    assert rsp.NumberOfCompletedSuboperations == 4
    assert rsp.NumberOfFailedSuboperations == 8
    assert len(identifier.FailedSOPInstanceUIDList) == 8
    # The same sender serves the next job.
    register(pacs, "DEST_SCP", dest.port)
    result = movescu(
        pacs, "DEST_SCP", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study.study_uid}"
    )
    assert result.returncode == 0, result.stderr
    assert_delivered(dest, study.files)
