"""The processes as an operator runs them: statistics, SIGTERM, bad settings."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import pytest
import redis

from minipacs.queue import heartbeat_key
from tests.helpers import (
    VENV_BIN,
    Pacs,
    c_echo,
    dcmtk,
    free_port,
    make_dataset,
    start_process,
    wait_until,
    write_dataset,
)


def test_stats_count_operations_and_add_up_across_listeners(
    pacs: Pacs, start_listener, tmp_path: Path
) -> None:
    other = start_listener()  # a second listener process on the same database
    before = pacs.settled_counters()
    assert set(before) >= {
        "c_echo_count",
        "c_store_count",
        "c_find_count",
        "c_move_count",
        "c_get_count",
        "mwl_count",
        "n_create_count",
        "n_set_count",
    }
    files = [str(write_dataset(make_dataset(patient_id="STATS"), tmp_path)) for _ in range(3)]
    for target in (pacs, other):
        address = ("-aec", target.ae_title, target.host, str(target.port))
        assert dcmtk("echoscu", *address).returncode == 0
        assert dcmtk("storescu", *address, *files).returncode == 0
    after = pacs.wait_counted(before, c_echo_count=2, c_store_count=6)

    table = pacs.minipacs("stats")
    assert table.returncode == 0
    assert any(
        line.split() == ["c_store_count", str(after["c_store_count"])]
        for line in table.stdout.splitlines()
    )


def test_listener_exits_0_on_sigterm_and_refuses_afterwards(start_listener) -> None:
    pacs = start_listener()
    assert pacs.process.stop(signal.SIGTERM) == 0
    assert "listener stopped" in pacs.process.log()
    assert not c_echo(pacs.host, pacs.port, pacs.ae_title, timeout=2)


def test_sender_starts_beats_and_exits_0_on_sigterm(base_env: dict, tmp_path: Path) -> None:
    sender = start_process(["sender"], base_env, tmp_path / "sender.log")
    client = redis.Redis.from_url(base_env["REDIS_URL"], socket_timeout=5)
    try:
        # This sender's own beat: one left by an earlier test's sender would
        # pass the health check before this one has even started.
        this_sender = f"{socket.gethostname()}-{sender.popen.pid}".encode()
        key = heartbeat_key(base_env["PACS_REDIS_PREFIX"])
        wait_until(lambda: client.get(key) == this_sender, 30, "this sender's heartbeat")
        check = [str(VENV_BIN / "minipacs"), "healthcheck", "--sender"]
        assert subprocess.run(check, env=base_env, timeout=10).returncode == 0
    finally:
        client.close()
        code = sender.stop(signal.SIGTERM)
    assert code == 0, sender.log()


def test_bad_setting_fails_at_start_with_one_line_naming_it(base_env: dict) -> None:
    for name, value in (
        ("PACS_PORT", "eleven"),
        ("PACS_DUPLICATE_POLICY", "sometimes"),
        ("PACS_AE_TITLE", "WAY_TOO_LONG_AE_TITLE"),
    ):
        result = subprocess.run(
            [str(VENV_BIN / "minipacs"), "listener"],
            env=base_env | {name: value},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and name in lines[0] and "configuration error" in lines[0]


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_port_in_use_fails_at_start_with_one_line(
    base_env: dict, tmp_path: Path, processes: str
) -> None:
    with socket.create_server(("0.0.0.0", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(VENV_BIN / "minipacs"), "listener"],
            env=base_env
            | {
                "PACS_PORT": str(port),
                "PACS_LISTENER_PROCESSES": processes,
                "PACS_STORAGE_DIR": str(tmp_path),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert errors == [errors[0]] and f"cannot listen on 0.0.0.0:{port}" in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_is_idempotent(pacs: Pacs) -> None:
    result = pacs.minipacs("migrate")
    assert result.returncode == 0, result.stderr
    assert "Running upgrade" not in result.stderr
    assert pacs.rows("SELECT count(*) FROM alembic_version") == [(1,)]


def test_healthcheck_echoes_the_local_listener(pacs: Pacs, base_env: dict) -> None:
    assert pacs.minipacs("healthcheck").returncode == 0
    nobody = base_env | {"PACS_PORT": str(free_port())}
    result = subprocess.run(
        [str(VENV_BIN / "minipacs"), "healthcheck"], env=nobody, capture_output=True, timeout=30
    )
    assert result.returncode == 1


def _pids(log: str, marker: str) -> list[str]:
    return [line.split("[")[1].split("]")[0] for line in log.splitlines() if marker in line]


def test_several_listener_processes_share_the_port(start_listener, tmp_path: Path) -> None:
    pacs = start_listener(PACS_LISTENER_PROCESSES="2")
    wait_until(
        lambda: len(set(_pids(pacs.process.log(), "listening as"))) == 2,
        30,
        "both listener processes",
    )
    batches = []
    for n in range(4):
        study = make_dataset(patient_id="MULTIPROC")
        batches.append(
            [
                str(
                    write_dataset(
                        make_dataset(
                            patient_id="MULTIPROC",
                            study_uid=study.StudyInstanceUID,
                            series_uid=study.SeriesInstanceUID,
                            instance_number=i,
                        ),
                        tmp_path / str(n),
                    )
                )
                for i in range(5)
            ]
        )
    clients = [
        subprocess.Popen(
            ["/usr/bin/storescu", "-aec", pacs.ae_title, pacs.host, str(pacs.port), *batch]
        )
        for batch in batches
    ]
    assert [c.wait(60) for c in clients] == [0, 0, 0, 0]
    assert pacs.rows(
        "SELECT count(*) FROM instances i JOIN series s ON s.id = i.series_fk "
        "JOIN studies st ON st.id = s.study_fk JOIN patients p ON p.id = st.patient_fk "
        "WHERE p.patient_id = 'MULTIPROC'"
    ) == [(20,)]
    # Four associations at once are shared out: a process already serving
    # one leaves the next to the idle one.
    accepted = _pids(pacs.process.log(), "association accepted: STORESCU")
    assert len(accepted) == 4
    assert len(set(accepted)) == 2, accepted
    assert pacs.process.stop(signal.SIGTERM) == 0
    assert "exit codes [0, 0]" in pacs.process.log()
