"""Test helpers: DICOM files built in code, DCMTK runs, psql reads, processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import Verification

VENV_BIN = Path(sys.executable).parent
DCMTK_BIN = Path("/usr/bin")  # pynetdicom installs same-named scripts in the venv


def dcmtk(
    tool: str, *args: str, timeout: float = 60, env: dict | None = None, check: bool = False
) -> subprocess.CompletedProcess:
    """Run a DCMTK tool by absolute path, bounded in time; output as text."""
    result = subprocess.run(
        [str(DCMTK_BIN / tool), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{tool} {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1
) -> Any:
    """Poll `predicate` until it returns something truthy or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def create_database(url: str) -> None:
    """A fresh, migrated database at `url` (`minipacs migrate` creates it)."""
    result = subprocess.run(
        [str(VENV_BIN / "minipacs"), "migrate"],
        env=os.environ | {"DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"minipacs migrate failed:\n{result.stderr}"


def drop_database(admin_url: str, url: str) -> None:
    """Drop the database named at the end of `url`, sessions and all."""
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(url.rsplit("/", 1)[1])
            )
        )


def query(database_url: str, sql: str, params: Sequence | None = None) -> list[tuple]:
    """Rows of one SQL statement, as psql would show them."""
    with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
        return conn.execute(sql, params).fetchall()


def c_echo(host: str, port: int, ae_title: str, timeout: float = 5) -> bool:
    ae = AE(ae_title="PROBE")
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    assoc = ae.associate(host, port, ae_title=ae_title)
    if not assoc.is_established:
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return bool(status) and status.Status == 0


@dataclass
class Process:
    """A `minipacs` subprocess with its log file."""

    popen: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
                raise AssertionError(
                    f"process ignored signal {sig} for {timeout}s:\n{self.log()}"
                ) from None
        return self.popen.returncode


def start_process(args: Sequence[str], env: dict, log_path: Path) -> Process:
    log_file = log_path.open("ab")
    popen = subprocess.Popen(
        [str(VENV_BIN / "minipacs"), *args],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log_file.close()
    return Process(popen, log_path)


@dataclass
class Pacs:
    """A running listener as a user sees it: host, port, AE title, volume, index."""

    host: str
    port: int
    ae_title: str
    storage_dir: Path
    database_url: str
    env: dict = field(repr=False)
    process: Process = field(repr=False)

    def rows(self, sql: str, params: Sequence | None = None) -> list[tuple]:
        return query(self.database_url, sql, params)

    def stored_file(self, ds: Dataset) -> Path:
        """Where the archive keeps `ds`: <storage>/<study>/<series>/<sop>.dcm."""
        return (
            self.storage_dir
            / ds.StudyInstanceUID
            / ds.SeriesInstanceUID
            / f"{ds.SOPInstanceUID}.dcm"
        )

    def counters(self) -> dict[str, int]:
        """`minipacs stats --json`."""
        result = self.minipacs("stats", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def settled_counters(self) -> dict[str, int]:
        """Counters once every listener's in-memory counts have been flushed
        (two reads a flush interval apart agree)."""
        previous = [self.counters()]

        def same_twice() -> dict | None:
            time.sleep(1.2)  # longer than stats.FLUSH_INTERVAL_SECONDS
            now = self.counters()
            stable = now == previous[0]
            previous[0] = now
            return now if stable else None

        return wait_until(same_twice, 20, "the statistics to settle", interval=0)

    def wait_counted(self, before: dict[str, int], **deltas: int) -> dict[str, int]:
        """Wait until each named counter has grown by exactly its delta."""

        def counted() -> dict | None:
            now = self.counters()
            return now if all(now[k] - before[k] == d for k, d in deltas.items()) else None

        return wait_until(counted, 15, f"counters to grow by {deltas}", interval=0.3)

    def minipacs(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a `minipacs` CLI command against this archive's settings."""
        return subprocess.run(
            [str(VENV_BIN / "minipacs"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def make_dataset(
    *,
    patient_id: str = "PAT001",
    patient_name: str = "DOE^JOHN",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    modality: str = "CT",
    study_date: str = "20240115",
    study_time: str = "101500",
    accession: str = "ACC001",
    study_description: str = "CT CHEST",
    series_number: int = 1,
    instance_number: int = 1,
    rows: int = 8,
    columns: int = 8,
    sop_class_uid: str = CTImageStorage,
    extra: dict[str, Any] | None = None,
) -> Dataset:
    """A small but valid image instance (Explicit VR Little Endian)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class_uid
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "M"
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.StudyDate = study_date
    ds.StudyTime = study_time
    ds.AccessionNumber = accession
    ds.StudyDescription = study_description
    ds.ReferringPhysicianName = "WELBY^MARCUS"
    ds.StudyID = "1"
    ds.Modality = modality
    ds.SeriesNumber = series_number
    ds.SeriesDescription = f"{modality} series {series_number}"
    ds.InstanceNumber = instance_number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(256)) * (rows * columns * 2 // 256) + bytes(rows * columns * 2 % 256)
    for keyword, value in (extra or {}).items():
        setattr(ds, keyword, value)
    return ds


def write_dataset(ds: Dataset, directory: Path, name: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (name or f"{ds.SOPInstanceUID}.dcm")
    ds.save_as(path, enforce_file_format=True)
    return path


def dataset_bytes(path: Path) -> bytes:
    """The encoded dataset of a Part 10 file, without preamble and file meta:
    what went over the wire. The meta group starts with its own length."""
    data = path.read_bytes()
    assert data[128:132] == b"DICM", f"{path} is not a Part 10 file"
    assert data[132:136] == b"\x02\x00\x00\x00", f"{path} has no FileMetaInformationGroupLength"
    (group_length,) = struct.unpack("<I", data[140:144])
    return data[144 + group_length :]
