"""Helpers shared by the fault, hostile-input and security tests: a listener
on a database of its own, C-STORE with full control over the request."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import psycopg
import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE

from tests.conftest import ADMIN_URL
from tests.helpers import DCMTK_BIN, Pacs, create_database, drop_database, wait_until


@pytest.fixture(name="isolated")
def isolated_fixture(
    start_listener: Callable[..., Pacs], base_env: dict[str, str]
) -> Iterator[Callable[..., Pacs]]:
    """Start listeners on a database of their own, so `minipacs verify` (which
    compares the whole index with one volume) and database faults see only
    this test's archive. Listeners are stopped and the database dropped after."""
    url = base_env["DATABASE_URL"] + "_" + uuid.uuid4().hex[:6]
    create_database(url)
    started: list[Pacs] = []

    def start(storage_dir: Path | None = None, **settings: str) -> Pacs:
        pacs = start_listener(storage_dir, DATABASE_URL=url, **settings)
        started.append(pacs)
        return dataclasses.replace(pacs, database_url=url)

    yield start
    for pacs in started:
        pacs.process.stop(signal.SIGKILL)
    drop_database(ADMIN_URL, url)


def indexed(pacs: Pacs, sop_uid: str) -> bool:
    return bool(pacs.rows("SELECT 1 FROM instances WHERE sop_instance_uid = %s", (sop_uid,)))


def temp_files(root: Path) -> list[Path]:
    return list(root.glob("*/*/.*.tmp"))


def client_ae(calling: str = "FAULTS", sop_class: str = CTImageStorage) -> AE:
    ae = AE(ae_title=calling)
    ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    return ae


def store(pacs: Pacs, datasets: list[Dataset], calling: str = "FAULTS") -> list[Dataset]:
    """C-STORE each dataset on one association (pynetdicom); the response
    status datasets (Status, ErrorComment)."""
    assoc = client_ae(calling).associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
    assert assoc.is_established, "association was not accepted"
    try:
        statuses = [assoc.send_c_store(ds) for ds in datasets]
    finally:
        assoc.release()
    assert all(statuses), "a C-STORE got no response"
    return statuses


def raw_store(
    pacs: Pacs,
    ds: Dataset,
    *,
    sop_class_uid: str,
    sop_instance_uid: str,
    context_sop_class: str = CTImageStorage,
) -> C_STORE:
    """Send a C-STORE whose request UIDs and dataset are exactly as given, with
    none of pynetdicom's client-side checks; return the response primitive."""
    assoc = client_ae(sop_class=context_sop_class).associate(
        pacs.host, pacs.port, ae_title=pacs.ae_title
    )
    assert assoc.is_established, "association was not accepted"
    try:
        buffer = DicomBytesIO()
        buffer.is_little_endian, buffer.is_implicit_VR = True, False
        write_dataset(buffer, ds)  # Explicit VR Little Endian, unvalidated
        request = C_STORE()
        request.MessageID = 1
        request.AffectedSOPClassUID = sop_class_uid
        request.AffectedSOPInstanceUID = sop_instance_uid
        request.Priority = 2
        request.DataSet = BytesIO(buffer.getvalue())
        context = assoc.accepted_contexts[0]
        # As send_c_store does: pause the association's reactor, or it may
        # take the response off the queue first.
        assoc._reactor_checkpoint.clear()
        wait_until(lambda: assoc._is_paused, 10, "the reactor to pause", interval=0.001)
        assoc.dimse.send_msg(request, context.context_id)
        _, response = assoc.dimse.get_msg(block=True)
        assoc._reactor_checkpoint.set()
    finally:
        assoc.release()
    assert response is not None, "no C-STORE response"
    return response


@contextmanager
def patients_locked(pacs: Pacs) -> Iterator[None]:
    """Hold a lock that blocks every index write (but not reads), so a store
    stops after its temp file is on disk and before its rows commit."""
    with psycopg.connect(pacs.database_url, connect_timeout=10) as conn:
        conn.execute("LOCK TABLE patients IN SHARE ROW EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.rollback()


def storescu(pacs: Pacs, files: list[Path], *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(DCMTK_BIN / "storescu"),
            "-v",
            *extra,
            "-aec",
            pacs.ae_title,
            pacs.host,
            str(pacs.port),
            *map(str, files),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def successes(output: str) -> int:
    return output.count("Received Store Response (Success)")


def c_find(
    assoc: Association, identifier: Dataset, model: str
) -> list[tuple[Dataset, Dataset | None]]:
    """Every response of one C-FIND, then wait for the association's reactor
    to resume. pynetdicom 3 checks only that its reactor *is* paused before
    sending the next request; right after a final response the flag may still
    say so from the last pause, and the reactor then takes the next fast
    response off the queue as "unexpected" (a lost match, or a DIMSE timeout
    and an abort). Waiting here closes that window between requests."""
    responses = list(assoc.send_c_find(identifier, model))
    wait_until(
        lambda: not assoc._is_paused or not assoc.is_established, 5, "the reactor", interval=0.0002
    )
    return responses
