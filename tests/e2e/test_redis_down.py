"""Redis unavailable when the listener starts: only C-MOVE needs it, so every
other service must start and answer promptly. Two kinds of absence: nothing
listening (connection refused at once) and a peer that accepts connections
but never answers (what a hung or firewalled Redis looks like, and what makes
a client without timeouts hang)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydicom.uid import generate_uid
from pynetdicom.sop_class import ModalityPerformedProcedureStep as MPPS

from tests.e2e.test_mpps import final_modification, n_create_dataset, schedule
from tests.e2e.worklist_tools import findscu_w, modality
from tests.helpers import Pacs, dcmtk, free_port, make_dataset, write_dataset

PROMPT = 10  # seconds any one service may take without Redis


@contextmanager
def silent_redis() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


@contextmanager
def redis_absent(kind: str) -> Iterator[str]:
    if kind == "refused":
        yield f"redis://127.0.0.1:{free_port()}/0"
    else:
        with silent_redis() as port:
            yield f"redis://127.0.0.1:{port}/0"


@contextmanager
def prompt(what: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    took = time.monotonic() - started
    assert took < PROMPT, f"{what} took {took:.1f}s without Redis"


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_listener_serves_everything_but_move_without_redis(
    start_listener: Callable[..., Pacs], tmp_path: Path, kind: str
) -> None:
    with redis_absent(kind) as redis_url:
        pacs = start_listener(REDIS_URL=redis_url)  # fails unless C-ECHO answers within 30 s
        tag = f"NOREDIS{kind.upper()}{generate_uid()[-6:]}"
        timeout = 2 * PROMPT

        with prompt("C-ECHO"):
            echo = dcmtk(
                "echoscu", "-aec", pacs.ae_title, pacs.host, str(pacs.port), timeout=timeout
            )
        assert echo.returncode == 0, echo.stderr

        ds = make_dataset(patient_id=tag, accession=tag[-16:])
        path = write_dataset(ds, tmp_path)
        with prompt("C-STORE"):
            stored = dcmtk(
                "storescu", "-aec", pacs.ae_title, pacs.host, str(pacs.port), str(path),
                timeout=timeout,
            )  # fmt: skip
        assert stored.returncode == 0, stored.stdout + stored.stderr
        assert pacs.rows(
            "SELECT 1 FROM instances WHERE sop_instance_uid = %s", (ds.SOPInstanceUID,)
        )

        with prompt("C-FIND"):
            found = dcmtk(
                "findscu", "-v", "-S", "-aec", pacs.ae_title,
                "-k", "QueryRetrieveLevel=STUDY", "-k", f"PatientID={tag}",
                "-k", "StudyInstanceUID",
                pacs.host, str(pacs.port), timeout=timeout,
            )  # fmt: skip
        output = found.stdout + found.stderr
        assert "Received Final Find Response (Success)" in output, output
        assert ds.StudyInstanceUID in output

        item = schedule(pacs)
        with prompt("MWL C-FIND"):
            steps = findscu_w(
                pacs, tmp_path / "mwl", f"AccessionNumber={item['accession']}", "PatientID="
            )
        assert [str(s.PatientID) for s in steps] == [item["patient_id"]]

        uid = generate_uid()
        with prompt("MPPS N-CREATE and N-SET"), modality(pacs) as assoc:
            created, _ = assoc.send_n_create(n_create_dataset(item), MPPS, uid)
            assert created and created.Status == 0
            finished, _ = assoc.send_n_set(final_modification("COMPLETED"), MPPS, uid)
            assert finished and finished.Status == 0
        assert pacs.rows(
            "SELECT performed_procedure_step_status FROM mpps WHERE sop_instance_uid = %s", (uid,)
        ) == [("COMPLETED",)]

        assert pacs.process.popen.poll() is None, pacs.process.log()
        assert "Traceback" not in pacs.process.log()
