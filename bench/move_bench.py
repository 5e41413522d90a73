"""C-MOVE and C-GET throughput beside DCMTK's ceiling (`make bench-move`).

One study of N (default 500) 512x512 16-bit CT images is stored in a
throwaway Mini PACS (fresh database, Redis prefix and volume; the real
`minipacs listener` and `minipacs sender` processes), then sent to one DCMTK
storescp three ways in the same run:

- storescu -> storescp: the ceiling for one association (no archive at all);
- movescu  -> Mini PACS -> sender -> storescp (C-MOVE);
- getscu   -> Mini PACS, instances back on the same association (C-GET).

DCMTK runs with TCP_NODELAY=1 in its environment (Debian's DCMTK only sets
it then). storescp and getscu receive with --ignore so disk speed does not
mask network speed. Figures on a shared machine are indicative.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

VENV_BIN = Path(sys.executable).parent
DCMTK = Path("/usr/bin")
ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
AE_TITLE = "MINI_PACS"
DEST_AE = "BENCH_SCP"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port} after {timeout}s")


def make_study(directory: Path, count: int, size: int) -> list[Path]:
    directory.mkdir(parents=True)
    study, series = generate_uid(), generate_uid()
    pixels = os.urandom(size * size * 2)
    paths = []
    for n in range(1, count + 1):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.PatientID, ds.PatientName = "BENCHMOVE", "BENCH^MOVE"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.StudyDate, ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "20240101", "CT", 1, n
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = pixels
        path = directory / f"{n:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def run(cmd: list[str], env: dict, timeout: float = 1800) -> float:
    """Run a client to completion; the wall time in seconds."""
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd[:3])}... failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()

    run_id = uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix="minipacs-move-bench-"))
    db_name = f"minipacs_bench_{run_id}"
    db_url = ADMIN_URL.rsplit("/", 1)[0] + "/" + db_name
    port, dest_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACS_")} | {
        "DATABASE_URL": db_url,
        "REDIS_URL": REDIS_URL,
        "PACS_REDIS_PREFIX": f"minipacs-bench-{run_id}",
        "PACS_AE_TITLE": AE_TITLE,
        "PACS_PORT": str(port),
        "PACS_STORAGE_DIR": str(work / "storage"),
        "PACS_LOG_LEVEL": "WARNING",
        "PACS_REMOTE_AES": f"{DEST_AE}=127.0.0.1:{dest_port}",
    }
    dcmtk_env = os.environ | {"TCP_NODELAY": "1"}
    processes: list[subprocess.Popen] = []

    def start(cmd: list[str], log: str, environment: dict) -> subprocess.Popen:
        with (work / log).open("wb") as out:
            popen = subprocess.Popen(cmd, env=environment, stdout=out, stderr=subprocess.STDOUT)
        processes.append(popen)
        return popen

    try:
        files = make_study(work / "study", args.count, args.size)
        total_mb = sum(p.stat().st_size for p in files) / 1e6
        study_uid = str(
            __import__("pydicom").dcmread(files[0], stop_before_pixels=True).StudyInstanceUID
        )
        subprocess.run(
            [str(VENV_BIN / "minipacs"), "migrate"],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        start([str(VENV_BIN / "minipacs"), "listener"], "listener.log", env)
        start([str(VENV_BIN / "minipacs"), "sender"], "sender.log", env)
        start(
            [str(DCMTK / "storescp"), "-aet", DEST_AE, "--ignore", str(dest_port)],
            "storescp.log",
            dcmtk_env,
        )
        wait_for_port(port)
        wait_for_port(dest_port)

        store = ["-aec", AE_TITLE, "127.0.0.1", str(port), *map(str, files)]
        ingest = run([str(DCMTK / "storescu"), *store], dcmtk_env)
        ceiling = run(
            [
                str(DCMTK / "storescu"),
                "-aec",
                DEST_AE,
                "127.0.0.1",
                str(dest_port),
                *map(str, files),
            ],
            dcmtk_env,
        )
        keys = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}"]
        move = run(
            [
                str(DCMTK / "movescu"),
                "-S",
                "-aec",
                AE_TITLE,
                "-aem",
                DEST_AE,
                *keys,
                "127.0.0.1",
                str(port),
            ],
            dcmtk_env,
        )
        get = run(
            [
                str(DCMTK / "getscu"),
                "-S",
                "--ignore",
                "-aec",
                AE_TITLE,
                *keys,
                "127.0.0.1",
                str(port),
            ],
            dcmtk_env,
        )

        print(
            f"{args.count} instances of {args.size}x{args.size} 16-bit, "
            f"{total_mb:.0f} MB, one association each"
        )
        print(f"{'path':<40} {'seconds':>8} {'inst/s':>8} {'MB/s':>8} {'of ceiling':>10}")
        for name, seconds in (
            ("storescu -> storescp (ceiling)", ceiling),
            ("C-MOVE movescu -> PACS -> storescp", move),
            ("C-GET getscu <- PACS", get),
            ("C-STORE storescu -> PACS (ingest)", ingest),
        ):
            print(
                f"{name:<40} {seconds:>8.2f} {args.count / seconds:>8.1f} "
                f"{total_mb / seconds:>8.1f} {ceiling / seconds:>9.0%}"
            )
        return 0
    finally:
        for popen in reversed(processes):
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
                try:
                    popen.wait(30)
                except subprocess.TimeoutExpired:
                    popen.kill()
        try:
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter(f"minipacs-bench-{run_id}:*"):
                client.delete(key)
        except Exception as exc:  # cleanup only
            print(f"could not clean Redis keys: {exc}", file=sys.stderr)
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name))
            )
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
