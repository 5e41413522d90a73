"""Faults injected for real against the running listener: the database goes
away, the process is killed mid-store, the disk fills up, many peers store at
once, and SIGTERM arrives during a stream. Nothing answered Success may be
lost, and nothing half-done may be left behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from minipacs import storage
from tests.conftest import ADMIN_URL
from tests.e2e.fault_helpers import (
    indexed,
    isolated_fixture,  # noqa: F401 (the `isolated` fixture)
    patients_locked,
    store,
    storescu,
    successes,
    temp_files,
)
from tests.helpers import (
    VENV_BIN,
    Pacs,
    c_echo,
    free_port,
    make_dataset,
    start_process,
    wait_until,
    write_dataset,
)

OUT_OF_RESOURCES = 0xA700


def verify(pacs: Pacs, *args: str) -> subprocess.CompletedProcess:
    return pacs.minipacs("verify", *args)


def db_name(pacs: Pacs) -> str:
    return pacs.database_url.rsplit("/", 1)[1]


@contextmanager
def database_down(pacs: Pacs) -> Iterator[None]:
    """Refuse new connections to the archive's database and terminate the
    existing ones; allow them again on exit, whatever happened."""
    name = db_name(pacs)
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=10) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name))
        )
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            yield
        finally:
            admin.execute(
                sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name))
            )


def test_database_unavailable_fails_the_store_and_recovers_without_restart(
    isolated: Callable[..., Pacs],
) -> None:
    pacs = isolated(PACS_DB_TIMEOUT="2")
    before, during, after = (make_dataset(patient_id="DBDOWN") for _ in range(3))
    assert store(pacs, [before])[0].Status == 0

    with database_down(pacs):
        (status,) = store(pacs, [during])
        assert status.Status == OUT_OF_RESOURCES
        assert "database unavailable" in status.ErrorComment
        assert not pacs.stored_file(during).exists()
        assert temp_files(pacs.storage_dir) == []
        assert c_echo(pacs.host, pacs.port, pacs.ae_title, timeout=10), "listener went down"

    # The pool reconnects by itself: the very next store succeeds.
    assert store(pacs, [after])[0].Status == 0
    assert pacs.process.popen.poll() is None
    assert not indexed(pacs, during.SOPInstanceUID)
    assert indexed(pacs, after.SOPInstanceUID) and pacs.stored_file(after).is_file()
    result = verify(pacs)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sigkill_mid_store_leaves_no_visible_half_file(
    isolated: Callable[..., Pacs], tmp_path: Path
) -> None:
    pacs = isolated(PACS_TEMP_SWEEP_AGE_SECONDS="0")
    ds = make_dataset(patient_id="KILLED")
    path = write_dataset(ds, tmp_path)
    with patients_locked(pacs):
        client = storescu(pacs, [path])
        try:
            # The temp file is written and fsynced; the index write waits on the lock.
            wait_until(lambda: temp_files(pacs.storage_dir), 20, "the store's temp file")
            pacs.process.popen.send_signal(signal.SIGKILL)
            pacs.process.popen.wait(10)
        finally:
            client.kill()
            client.wait(10)
    assert not pacs.stored_file(ds).exists(), "a half-stored instance is visible"
    assert not indexed(pacs, ds.SOPInstanceUID)

    restarted = isolated(pacs.storage_dir, PACS_TEMP_SWEEP_AGE_SECONDS="0")
    assert temp_files(restarted.storage_dir) == [], "temp files were not swept at start"
    assert "removed 1 temp files" in restarted.process.log()
    result = verify(restarted)
    assert result.returncode == 0, result.stdout
    assert "consistent" in result.stdout


def test_restart_completes_stores_interrupted_between_publish_and_commit(
    isolated: Callable[..., Pacs], tmp_path: Path
) -> None:
    """A store publishes the file under its final name as a second link and
    drops the temp name only after the index commit. A process killed in
    between leaves both names; the next start removes a file whose rows were
    never committed (its C-STORE was never answered) and keeps one whose rows
    were. The state is laid out with the listener's own storage functions, as
    hitting that sub-millisecond window with SIGKILL cannot be made reliable."""
    pacs = isolated(PACS_TEMP_SWEEP_AGE_SECONDS="0")
    committed = make_dataset(patient_id="CRASHED")
    assert store(pacs, [committed])[0].Status == 0
    os.link(pacs.stored_file(committed), storage._temp_path(pacs.stored_file(committed)))

    never_committed = make_dataset(patient_id="CRASHED")
    final = pacs.stored_file(never_committed)
    part10 = write_dataset(never_committed, tmp_path).read_bytes()
    storage.publish(storage.write_temp(final, part10), final)
    assert len(temp_files(pacs.storage_dir)) == 2
    pacs.process.stop(signal.SIGKILL)

    restarted = isolated(pacs.storage_dir, PACS_TEMP_SWEEP_AGE_SECONDS="0")
    assert temp_files(restarted.storage_dir) == []
    assert not final.exists(), "a file never answered Success survived the restart"
    assert pacs.stored_file(committed).is_file()
    assert "removed 1 files published by an interrupted store" in restarted.process.log()
    result = verify(restarted)
    assert result.returncode == 0, result.stdout
    assert "consistent" in result.stdout


def test_sigkill_during_a_stream_then_verify_is_consistent(
    isolated: Callable[..., Pacs], tmp_path: Path
) -> None:
    pacs = isolated(PACS_TEMP_SWEEP_AGE_SECONDS="0")
    study, series = generate_uid(), generate_uid()
    files = [
        write_dataset(
            make_dataset(
                patient_id="KILLED2", study_uid=study, series_uid=series, instance_number=n
            ),
            tmp_path,
        )
        for n in range(200)
    ]
    client = storescu(pacs, files)
    try:
        wait_until(
            lambda: (
                pacs.rows(
                    "SELECT count(*) FROM instances i JOIN series s ON "
                    "s.id = i.series_fk WHERE s.series_instance_uid = %s",
                    (series,),
                )[0][0]
                >= 20
            ),
            60,
            "20 instances stored",
        )
        pacs.process.popen.send_signal(signal.SIGKILL)
        pacs.process.popen.wait(10)
        output, _ = client.communicate(timeout=60)
    finally:
        client.kill()
    restarted = isolated(pacs.storage_dir, PACS_TEMP_SWEEP_AGE_SECONDS="0")
    result = verify(restarted)
    assert result.returncode == 0, result.stdout
    stored = pacs.rows(
        "SELECT count(*) FROM instances i JOIN series s ON s.id = i.series_fk "
        "WHERE s.series_instance_uid = %s",
        (series,),
    )[0][0]
    # Every instance answered Success is there; at most the one in flight
    # when the process died was indexed without its response reaching us.
    assert successes(output) <= stored <= successes(output) + 1
    assert len(list((restarted.storage_dir / study / series).glob("*.dcm"))) == stored


@pytest.fixture
def tiny_volume(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, so the volume really runs out of space (needs root)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], timeout=30, check=False)


def test_disk_full_answers_out_of_resources_and_indexes_nothing(
    isolated: Callable[..., Pacs], tiny_volume: Path
) -> None:
    pacs = isolated(tiny_volume / "storage")
    small = make_dataset(patient_id="DISKFULL")
    too_big = make_dataset(patient_id="DISKFULL", rows=1024, columns=1024)  # 2 MiB
    try:
        (ok, full) = store(pacs, [small, too_big])
        assert ok.Status == 0
        assert full.Status == OUT_OF_RESOURCES
        assert "storage failure" in full.ErrorComment
        assert not indexed(pacs, too_big.SOPInstanceUID)
        assert not pacs.stored_file(too_big).exists()
        assert temp_files(pacs.storage_dir) == []
        # The space of the failed write was given back: small stores go on.
        again = make_dataset(patient_id="DISKFULL")
        assert store(pacs, [again])[0].Status == 0
        assert verify(pacs).returncode == 0
    finally:
        pacs.process.stop()


def test_eight_associations_into_one_series_at_once(pacs: Pacs, tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    batches = [
        [
            write_dataset(
                make_dataset(
                    patient_id="CONCURRENT",
                    study_uid=study,
                    series_uid=series,
                    instance_number=b * 20 + n,
                ),
                tmp_path / str(b),
            )
            for n in range(20)
        ]
        for b in range(8)
    ]
    clients = [storescu(pacs, files) for files in batches]
    outputs = [client.communicate(timeout=120)[0] for client in clients]
    for client, output in zip(clients, outputs, strict=True):
        assert client.returncode == 0, output
        assert successes(output) == 20, output
    assert pacs.rows(
        "SELECT count(*) FROM instances i JOIN series s ON s.id = i.series_fk "
        "WHERE s.series_instance_uid = %s",
        (series,),
    ) == [(160,)]
    assert pacs.rows("SELECT count(*) FROM patients WHERE patient_id = 'CONCURRENT'") == [(1,)]
    assert len(list((pacs.storage_dir / study / series).glob("*.dcm"))) == 160
    log = pacs.process.log().lower()
    assert "deadlock" not in log and "uniqueviolation" not in log


@pytest.mark.parametrize("limit", [50, 5])
def test_fifty_simultaneous_associations(
    start_listener: Callable[..., Pacs], tmp_path: Path, limit: int
) -> None:
    """Separate processes: with the default limit all are served; with a low
    one the surplus is refused with an association rejection, never hung."""
    pacs = start_listener(PACS_MAX_ASSOCIATIONS=str(limit))
    files = [
        write_dataset(make_dataset(patient_id=f"MANY{limit}"), tmp_path / str(i)) for i in range(50)
    ]
    clients = [storescu(pacs, [path]) for path in files]
    outputs = [client.communicate(timeout=120)[0] for client in clients]
    served = refused = 0
    for client, output in zip(clients, outputs, strict=True):
        if client.returncode == 0 and successes(output) == 1:
            served += 1
        else:
            assert "Association Rejected" in output, output
            assert "Local Limit Exceeded" in output, output
            refused += 1
    assert served + refused == 50
    if limit == 50:
        assert served == 50
    else:  # 50 storescu processes at once outrun 5 slots (measured: ~38 refused)
        assert refused > 0
    assert served >= 1
    assert pacs.rows(
        "SELECT count(*) FROM instances i JOIN series s ON s.id = i.series_fk "
        "JOIN studies st ON st.id = s.study_fk JOIN patients p ON p.id = st.patient_fk "
        "WHERE p.patient_id = %s",
        (f"MANY{limit}",),
    ) == [(served,)]
    assert c_echo(pacs.host, pacs.port, pacs.ae_title)


def test_sigterm_finishes_the_current_store_and_refuses_new_work(
    start_listener: Callable[..., Pacs], tmp_path: Path
) -> None:
    pacs = start_listener()
    study, series = generate_uid(), generate_uid()
    datasets = [
        make_dataset(patient_id="SIGTERM", study_uid=study, series_uid=series, instance_number=n)
        for n in range(3)
    ]
    files = [write_dataset(ds, tmp_path) for ds in datasets]
    with patients_locked(pacs):
        client = storescu(pacs, files)
        wait_until(lambda: temp_files(pacs.storage_dir), 20, "the first store in flight")
        pacs.process.popen.send_signal(signal.SIGTERM)
        # Still running (the store waits on the lock) but accepting nobody new.
        wait_until(
            lambda: not c_echo(pacs.host, pacs.port, pacs.ae_title, timeout=2),
            10,
            "new associations to be refused",
        )
        assert pacs.process.popen.poll() is None
    output, _ = client.communicate(timeout=60)
    assert pacs.process.popen.wait(30) == 0
    assert successes(output) == 1, output
    assert indexed(pacs, datasets[0].SOPInstanceUID)
    assert pacs.stored_file(datasets[0]).is_file()
    for ds in datasets[1:]:
        assert not indexed(pacs, ds.SOPInstanceUID)
        assert not pacs.stored_file(ds).exists()
    assert temp_files(pacs.storage_dir) == []
    assert "listener stopped" in pacs.process.log()


def test_verify_reports_and_repairs(isolated: Callable[..., Pacs]) -> None:
    """`minipacs verify` against a doctored volume: a row without its file, a
    file without its row, a truncated file; `--repair` indexes the orphan."""
    pacs = isolated()
    missing, orphan, truncated = (make_dataset(patient_id="VERIFY") for _ in range(3))
    assert [s.Status for s in store(pacs, [missing, truncated])] == [0, 0]
    pacs.stored_file(missing).unlink()
    orphan_path = pacs.stored_file(orphan)
    write_dataset(orphan, orphan_path.parent, orphan_path.name)
    with pacs.stored_file(truncated).open("r+b") as f:
        f.truncate(100)
    stray = pacs.storage_dir / "1.2.3" / "4.5.6" / f"{uuid.uuid4().hex}.dcm"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not dicom")

    result = verify(pacs)
    assert result.returncode == 1
    out = result.stdout
    assert f"row without file: {pacs.stored_file(missing).relative_to(pacs.storage_dir)}" in out
    assert f"file without row: {orphan_path.relative_to(pacs.storage_dir)}" in out
    assert "size mismatch" in out and truncated.SOPInstanceUID in out
    assert "INCONSISTENT" in out

    repaired = verify(pacs, "--repair")
    assert repaired.returncode == 1  # the missing file and truncation remain
    assert f"repaired (indexed): {orphan_path.relative_to(pacs.storage_dir)}" in repaired.stdout
    assert "cannot repair" in repaired.stdout and stray.name in repaired.stdout
    assert pacs.rows(
        "SELECT file_path, file_size, transfer_syntax_uid FROM instances "
        "WHERE sop_instance_uid = %s",
        (orphan.SOPInstanceUID,),
    ) == [
        (
            str(orphan_path.relative_to(pacs.storage_dir)),
            orphan_path.stat().st_size,
            ExplicitVRLittleEndian,
        )
    ]


def test_listener_starts_and_stores_with_redis_down(start_listener: Callable[..., Pacs]) -> None:
    """Redis only feeds C-MOVE: without it, C-ECHO and C-STORE go on."""
    pacs = start_listener(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    ds = make_dataset(patient_id="NOREDIS")
    assert store(pacs, [ds])[0].Status == 0
    assert indexed(pacs, ds.SOPInstanceUID)


@contextmanager
def redis_server(port: int, workdir: Path) -> Iterator[subprocess.Popen]:
    """A private redis-server (the shared one must not be taken down)."""
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(
            lambda: (
                subprocess.run(
                    ["redis-cli", "-p", str(port), "ping"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                ).stdout.strip()
                == "PONG"
            ),
            10,
            "redis-server to answer",
        )
        yield process
    finally:
        process.kill()
        process.wait(10)


def test_sender_survives_redis_outages_and_stops_on_sigterm(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    env = base_env | {"REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    sender = start_process(["sender"], env, tmp_path / "sender.log")

    def healthy() -> bool:
        result = subprocess.run(
            [str(VENV_BIN / "minipacs"), "healthcheck", "--sender"],
            env=env,
            capture_output=True,
            timeout=30,
        )
        return result.returncode == 0

    try:
        # Redis down at start: the sender runs and says so, and is not healthy.
        wait_until(lambda: "redis unavailable" in sender.log(), 20, "the sender to notice")
        assert sender.popen.poll() is None
        with redis_server(port, tmp_path):
            wait_until(healthy, 20, "the sender heartbeat")
        # Redis gone mid-run, then back empty: only a new beat makes it healthy.
        assert sender.popen.poll() is None
        with redis_server(port, tmp_path):
            wait_until(healthy, 20, "the sender heartbeat after Redis returned")
            started = time.monotonic()
            assert sender.stop(signal.SIGTERM, timeout=15) == 0
            assert time.monotonic() - started < 10
        assert "stopped" in sender.log()
    finally:
        if sender.popen.poll() is None:
            sender.popen.kill()


@pytest.mark.parametrize("policy", ["keep", "overwrite"])
def test_same_instance_from_eight_associations_at_once(
    isolated: Callable[..., Pacs], tmp_path: Path, policy: str
) -> None:
    """A modality retrying while its first attempt is still in flight: every
    copy is answered Success, one row and one file remain, nothing dangles."""
    pacs = isolated(PACS_DUPLICATE_POLICY=policy)
    ds = make_dataset(patient_id="SAMEINSTANCE")
    files = [write_dataset(ds, tmp_path / str(n)) for n in range(8)]
    clients = [storescu(pacs, [path]) for path in files]
    outputs = [client.communicate(timeout=120)[0] for client in clients]
    assert all(successes(output) == 1 for output in outputs), outputs
    assert pacs.rows(
        "SELECT count(*) FROM instances WHERE sop_instance_uid = %s", (ds.SOPInstanceUID,)
    ) == [(1,)]
    assert pacs.stored_file(ds).is_file()
    assert temp_files(pacs.storage_dir) == []
    result = verify(pacs)
    assert result.returncode == 0, result.stdout


def test_listener_started_while_the_database_is_down_serves_once_it_returns(
    isolated: Callable[..., Pacs],
) -> None:
    first = isolated()
    first.process.stop()
    with database_down(first):
        # C-ECHO waits PACS_DB_TIMEOUT for its counter, then answers anyway.
        pacs = isolated(first.storage_dir, PACS_DB_TIMEOUT="1")
        ds = make_dataset(patient_id="DBDOWNATSTART")
        (status,) = store(pacs, [ds])
        assert status.Status == OUT_OF_RESOURCES
        assert not pacs.stored_file(ds).exists()
    assert store(pacs, [ds])[0].Status == 0
    assert indexed(pacs, ds.SOPInstanceUID)
