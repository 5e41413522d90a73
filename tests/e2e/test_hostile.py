"""Hostile and broken peers: junk on the port, aborted associations, UIDs that
are not UIDs, incomplete datasets, SQL metacharacters. The listener answers a
failure status or drops the connection, and keeps serving everyone else."""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, MRImageStorage, generate_uid

from tests.e2e.fault_helpers import (
    client_ae,
    indexed,
    isolated_fixture,  # noqa: F401 (the `isolated` fixture)
    patients_locked,
    raw_store,
    store,
    storescu,
    temp_files,
)
from tests.helpers import Pacs, c_echo, make_dataset, wait_until, write_dataset

NETWORK_TIMEOUT = 3.0
INVALID_UID = 0xC001
CANNOT_UNDERSTAND = 0xC000
DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
SOP_INSTANCE_MISMATCH = 0xC002


@pytest.fixture(scope="module")
def hostile_pacs(start_listener: Callable[..., Pacs]) -> Pacs:
    """A listener that drops silent peers after NETWORK_TIMEOUT seconds."""
    return start_listener(PACS_NETWORK_TIMEOUT=str(NETWORK_TIMEOUT))


def _associate_rq_header(length: int) -> bytes:
    """A-ASSOCIATE-RQ PDU type and length (PS3.8 9.3.2)."""
    return struct.pack(">BBL", 0x01, 0x00, length)


JUNK = {
    "random bytes": random.Random(6).randbytes(4096),
    "HTTP request": b"GET / HTTP/1.1\r\nHost: pacs\r\nUser-Agent: curl/8\r\n\r\n",
    # Claims 200 bytes of A-ASSOCIATE-RQ, sends 10, then goes silent.
    "truncated PDU": _associate_rq_header(200) + b"\x00\x01\x00\x00MINI",
    # Claims a 4 GiB PDU, sends a little, then goes silent.
    "oversize PDU length": _associate_rq_header(0xFFFFFFFF) + b"\x00" * 1024,
    # Same oversize claim on a P-DATA-TF before any association.
    "oversize P-DATA": struct.pack(">BBL", 0x04, 0x00, 0xFFFFFFFF) + b"\x00" * 1024,
}


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes (or resets) the connection within `within`
    seconds; whatever it sends before (an A-ABORT) is read and ignored."""
    sock.settimeout(within)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False


@pytest.mark.parametrize("name", list(JUNK))
def test_junk_on_the_port_is_dropped_and_others_are_served(hostile_pacs: Pacs, name: str) -> None:
    pacs = hostile_pacs
    with socket.create_connection((pacs.host, pacs.port), timeout=5) as sock:
        sock.sendall(JUNK[name])
        # While this peer holds its connection, others are served.
        assert c_echo(pacs.host, pacs.port, pacs.ae_title)
        assert _closed_by_server(sock, NETWORK_TIMEOUT + 10), f"{name}: connection kept open"
    assert pacs.process.popen.poll() is None
    assert c_echo(pacs.host, pacs.port, pacs.ae_title)


def test_silent_connections_do_not_block_the_port(hostile_pacs: Pacs) -> None:
    """Ten peers connect and say nothing: the listener still serves C-ECHO,
    then drops them after the network timeout."""
    pacs = hostile_pacs
    socks = [socket.create_connection((pacs.host, pacs.port), timeout=5) for _ in range(10)]
    try:
        assert c_echo(pacs.host, pacs.port, pacs.ae_title)
        for sock in socks:
            assert _closed_by_server(sock, NETWORK_TIMEOUT + 10)
    finally:
        for sock in socks:
            sock.close()


def _thread_count(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Threads:")).split()[1])


def test_twenty_aborted_associations_leak_no_threads_or_connections(
    isolated: Callable[..., Pacs],
) -> None:
    pacs = isolated(PACS_DB_POOL_SIZE="10", PACS_DB_TIMEOUT="2", PACS_NETWORK_TIMEOUT="5")
    pid = pacs.process.popen.pid
    assert store(pacs, [make_dataset(patient_id="ABORT")])[0].Status == 0
    baseline = _thread_count(pid)

    # Twenty stores are held inside the listener (index writes wait on a lock),
    # then every requestor aborts its association.
    with patients_locked(pacs):
        associations = []
        for _ in range(20):
            assoc = client_ae("ABORTER").associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
            assert assoc.is_established
            associations.append(assoc)
        senders = [
            threading.Thread(
                target=assoc.send_c_store, args=(make_dataset(patient_id="ABORT"),), daemon=True
            )
            for assoc in associations
        ]
        for sender in senders:
            sender.start()
        wait_until(lambda: len(temp_files(pacs.storage_dir)) >= 10, 20, "stores in flight")
        for assoc in associations:
            assoc.abort()
        # (the senders are daemon threads waiting for answers that never come)

    sessions = settled_sessions(pacs, pid, baseline)
    assert len(sessions) <= 10, sessions
    assert all(state == "idle" for (state,) in sessions), sessions
    assert c_echo(pacs.host, pacs.port, pacs.ae_title)
    # Whatever was indexed has its file (the aborted requestors got no answer).
    assert pacs.minipacs("verify").returncode == 0


NOT_UIDS = ["../..", "../../../../tmp/evil", "1." + "2" * 70, "1.2.abc", "ABC", ""]
UID_ATTRIBUTES = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"]


@pytest.mark.parametrize("attribute", UID_ATTRIBUTES)
@pytest.mark.parametrize("bad", NOT_UIDS, ids=lambda v: repr(v)[:20])
def test_uids_that_are_not_uids_are_refused(hostile_pacs: Pacs, attribute: str, bad: str) -> None:
    pacs = hostile_pacs
    root = pacs.storage_dir.parent
    before = {p for p in root.rglob("*")}
    ds = make_dataset(patient_id="BADUID")
    setattr(ds, attribute, bad)
    # pynetdicom cannot even put an empty or over-long UID in the request;
    # the request then names a valid one and only the dataset carries `bad`.
    sop_uid = ds.SOPInstanceUID if 0 < len(ds.SOPInstanceUID) <= 64 else generate_uid()
    response = raw_store(pacs, ds, sop_class_uid=CTImageStorage, sop_instance_uid=sop_uid)
    assert response.Status in (INVALID_UID, CANNOT_UNDERSTAND), hex(response.Status)
    assert response.ErrorComment
    after = {p for p in root.rglob("*")} - before
    written = [p for p in after if p.is_file() and p.name != "listener.log"]
    assert written == [], written
    assert not (root.parent / "tmp" / "evil").exists()
    assert pacs.rows("SELECT count(*) FROM patients WHERE patient_id = 'BADUID'") == [(0,)]


@pytest.mark.parametrize("attribute", ["SOPInstanceUID", "StudyInstanceUID", "SOPClassUID"])
def test_dataset_without_a_required_uid_is_refused_with_a_comment(
    hostile_pacs: Pacs, attribute: str
) -> None:
    ds = make_dataset(patient_id="NOUID")
    sop_uid = ds.SOPInstanceUID
    delattr(ds, attribute)
    response = raw_store(hostile_pacs, ds, sop_class_uid=CTImageStorage, sop_instance_uid=sop_uid)
    assert response.Status == INVALID_UID, hex(response.Status)
    assert attribute in response.ErrorComment
    assert not indexed(hostile_pacs, sop_uid)


def test_sop_class_mismatches_are_refused_with_a_comment(hostile_pacs: Pacs) -> None:
    pacs = hostile_pacs
    # The dataset says MR, the request and the presentation context say CT.
    ds = make_dataset(patient_id="MISMATCH", sop_class_uid=MRImageStorage)
    response = raw_store(pacs, ds, sop_class_uid=CTImageStorage, sop_instance_uid=ds.SOPInstanceUID)
    assert response.Status == DATASET_DOES_NOT_MATCH_SOP_CLASS
    assert "SOPClassUID" in response.ErrorComment
    # Dataset and request say MR, but the presentation context is CT.
    ds = make_dataset(patient_id="MISMATCH", sop_class_uid=MRImageStorage)
    response = raw_store(pacs, ds, sop_class_uid=MRImageStorage, sop_instance_uid=ds.SOPInstanceUID)
    assert response.Status == DATASET_DOES_NOT_MATCH_SOP_CLASS
    assert "presentation context" in response.ErrorComment
    # The request names another instance than the dataset.
    ds = make_dataset(patient_id="MISMATCH")
    response = raw_store(pacs, ds, sop_class_uid=CTImageStorage, sop_instance_uid=generate_uid())
    assert response.Status == SOP_INSTANCE_MISMATCH
    assert response.ErrorComment
    assert pacs.rows("SELECT count(*) FROM patients WHERE patient_id = 'MISMATCH'") == [(0,)]


def test_garbage_dataset_is_refused(hostile_pacs: Pacs) -> None:
    """A C-STORE whose data set bytes are not DICOM at all."""
    ds = Dataset()
    ds.add_new(0x00080016, "UI", CTImageStorage)
    ds.add_new(0x00080018, "UI", generate_uid())
    ds.add_new(0x00100010, "UN", random.Random(7).randbytes(300))
    ds.add_new(0x7FE00010, "OB", b"\xff" * 64)
    response = raw_store(
        hostile_pacs, ds, sop_class_uid=CTImageStorage, sop_instance_uid=ds.SOPInstanceUID
    )
    assert response.Status != 0
    assert c_echo(hostile_pacs.host, hostile_pacs.port, hostile_pacs.ae_title)


SQL_VALUES = {
    "PatientID": "P'; DROP TABLE patients; --",
    "PatientName": "O'BRIEN^ROBERT\\\"); DELETE FROM studies; --",
    "AccessionNumber": "%_*?[]\\'",
    "StudyDescription": "$$ ; SELECT pg_sleep(10); $$ %s %(x)s",
    "SeriesDescription": "' OR '1'='1",
    "ReferringPhysicianName": "Robert'); DROP TABLE instances;--",
}


def test_sql_metacharacters_in_stored_values_are_data(hostile_pacs: Pacs) -> None:
    pacs = hostile_pacs
    ds = make_dataset(patient_id=SQL_VALUES["PatientID"], extra=dict(SQL_VALUES))
    started = time.monotonic()
    assert store(pacs, [ds])[0].Status == 0
    assert time.monotonic() - started < 8, "a value was executed (pg_sleep)"
    row = pacs.rows(
        "SELECT p.patient_id, p.patient_name, st.accession_number, st.study_description, "
        "se.series_description, st.referring_physician_name FROM instances i "
        "JOIN series se ON se.id = i.series_fk JOIN studies st ON st.id = se.study_fk "
        "JOIN patients p ON p.id = st.patient_fk WHERE i.sop_instance_uid = %s",
        (ds.SOPInstanceUID,),
    )
    assert row == [
        (
            SQL_VALUES["PatientID"],
            SQL_VALUES["PatientName"],
            SQL_VALUES["AccessionNumber"],
            SQL_VALUES["StudyDescription"],
            SQL_VALUES["SeriesDescription"],
            SQL_VALUES["ReferringPhysicianName"],
        )
    ]
    tables = {t for (t,) in pacs.rows("SELECT tablename FROM pg_tables")}
    assert {"patients", "studies", "instances"} <= tables


def _rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return (
        int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
        * 1024
    )


def test_a_peer_announcing_a_huge_pdu_is_cut_off(hostile_pacs: Pacs) -> None:
    """A P-DATA-TF header claiming 4 GiB, then data as fast as possible: the
    listener must refuse it after the header, not buffer it in memory."""
    pacs = hostile_pacs
    pid = pacs.process.popen.pid
    before = _rss_bytes(pid)
    chunk = b"\x00" * (1 << 20)
    sent = 0
    with socket.create_connection((pacs.host, pacs.port), timeout=10) as sock:
        sock.sendall(struct.pack(">BBL", 0x04, 0x00, 0xFFFFFFFF))
        with pytest.raises(OSError):  # reset / broken pipe once the listener hangs up
            while sent < 512 << 20:
                sock.sendall(chunk)
                sent += len(chunk)
    assert sent < 64 << 20, f"the listener swallowed {sent >> 20} MiB"
    assert _rss_bytes(pid) - before < 64 << 20
    assert c_echo(pacs.host, pacs.port, pacs.ae_title)


def test_large_instances_still_store_in_negotiated_fragments(hostile_pacs: Pacs) -> None:
    ds = make_dataset(patient_id="BIGIMAGE", rows=1024, columns=2048)  # 4 MiB of pixels
    assert store(hostile_pacs, [ds])[0].Status == 0
    assert indexed(hostile_pacs, ds.SOPInstanceUID)


def test_twenty_clients_killed_mid_transfer_leak_nothing(
    isolated: Callable[..., Pacs], tmp_path: Path
) -> None:
    """storescu processes killed while sending 1 MiB instances: their TCP
    connections vanish mid-PDU. Threads, temp files and connections go back."""
    pacs = isolated(PACS_NETWORK_TIMEOUT="5")
    pid = pacs.process.popen.pid
    assert store(pacs, [make_dataset(patient_id="KILLEDCLIENT")])[0].Status == 0
    baseline = _thread_count(pid)
    files = [
        write_dataset(make_dataset(patient_id="KILLEDCLIENT", rows=512, columns=1024), tmp_path)
        for _ in range(10)
    ]
    clients = [storescu(pacs, files) for _ in range(20)]
    try:
        wait_until(
            lambda: pacs.rows("SELECT count(*) FROM instances")[0][0] >= 5, 60, "stores under way"
        )
    finally:
        for client in clients:
            client.kill()
        for client in clients:
            client.wait(10)

    sessions = settled_sessions(pacs, pid, baseline)
    assert all(state == "idle" for (state,) in sessions), sessions
    assert c_echo(pacs.host, pacs.port, pacs.ae_title)
    assert pacs.minipacs("verify").returncode == 0


def settled_sessions(pacs: Pacs, pid: int, baseline: int) -> list[tuple]:
    """Wait until the listener is back to `baseline` threads with no temp file
    left, then return the states of its database sessions."""

    def settled() -> bool:
        return _thread_count(pid) <= baseline and not temp_files(pacs.storage_dir)

    wait_until(settled, 30, f"threads back to {baseline} and temp files gone")
    db = pacs.database_url.rsplit("/", 1)[1]
    return pacs.rows(
        "SELECT state FROM pg_stat_activity WHERE datname = %s AND application_name = 'listener'",
        (db,),
    )
