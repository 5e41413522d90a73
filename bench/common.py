"""Shared by the benchmarks: data generation, a throwaway archive, timing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

VENV_BIN = Path(sys.executable).parent
ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ct_study(directory: Path, count: int, size: int = 512, patient_id: str = "BENCH") -> list[Path]:
    """`count` CT images of size x size 16-bit in one new study and series."""
    directory.mkdir(parents=True, exist_ok=True)
    study, series = generate_uid(), generate_uid()
    pixels = os.urandom(size * size * 2)
    paths = []
    for number in range(1, count + 1):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.PatientID, ds.PatientName = patient_id, "BENCH^MARK"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.StudyDate, ds.StudyTime, ds.Modality = "20260101", "120000", "CT"
        ds.AccessionNumber, ds.SeriesNumber, ds.InstanceNumber = "BENCH1", 1, number
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = pixels
        path = directory / f"{number:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    os.sync()  # written back now, not while something is being timed
    return paths


@dataclass
class Archive:
    port: int
    storage: Path
    database_url: str
    env: dict
    process: subprocess.Popen
    sender: subprocess.Popen | None = None


@contextmanager
def archive(workdir: Path, sender: bool = False, **settings: str) -> Iterator[Archive]:
    """A migrated throwaway database and a `minipacs listener` on a free port
    (and a `minipacs sender` when asked), stopped and dropped afterwards."""
    name = f"minipacs_bench_{uuid.uuid4().hex[:8]}"
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    port = free_port()
    storage = workdir / f"storage-{name}"
    env = (
        os.environ
        | {
            "DATABASE_URL": url,
            "REDIS_URL": REDIS_URL,
            "PACS_REDIS_PREFIX": f"bench-{name}",
            "PACS_PORT": str(port),
            "PACS_STORAGE_DIR": str(storage),
            "PACS_LOG_LEVEL": "WARNING",
        }
        | settings
    )
    subprocess.run(
        [str(VENV_BIN / "minipacs"), "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    log = (workdir / f"{name}.log").open("wb")
    commands = ["listener", "sender"] if sender else ["listener"]
    processes = [
        subprocess.Popen(
            [str(VENV_BIN / "minipacs"), command], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        for command in commands
    ]
    try:
        wait_for_echo(port, 30)
        yield Archive(port, storage, url, env, processes[0], processes[1] if sender else None)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
        log.close()
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


def wait_for_echo(port: int, timeout: float) -> None:
    """Wait until the archive answers C-ECHO (with several listener processes
    the port opens before they are up), then give the others a moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        echo = subprocess.run(
            ["/usr/bin/echoscu", "-to", "2", "-aec", "MINI_PACS", "127.0.0.1", str(port)],
            capture_output=True,
            timeout=30,
        )
        if echo.returncode == 0:
            time.sleep(1)
            return
        time.sleep(0.2)
    raise RuntimeError(f"no C-ECHO answer on port {port} after {timeout}s")


def timed(args: list[str], env: dict | None = None, timeout: float = 600) -> float:
    """Run a command to completion; its wall time in seconds (fails loudly)."""
    start = time.perf_counter()
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{args[0]} exited {result.returncode}: {result.stderr[-2000:]}")
    return elapsed


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="minipacs-bench-"))
