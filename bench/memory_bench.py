"""Listener and sender memory and CPU during long streams.

    python bench/memory_bench.py [--count 10000]

Streams `count` small CT instances (64x64) over one storescu association,
sampling the listener's resident memory, then moves them all in one C-MOVE to
a DCMTK storescp, sampling the sender's. RSS must not grow with the number of
instances stored or sent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pydicom import dcmread

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import archive, ct_study, free_port, scratch_dir, wait_for_port  # noqa: E402
from procstat import cpu_seconds, rss_bytes  # noqa: E402

DEST_AE = "MEMORY_SCP"


def sample_while(process: subprocess.Popen, pid: int) -> tuple[float, list[tuple[float, int]]]:
    """Sample `pid`'s RSS every 0.1 s until `process` ends; (seconds, samples)."""
    start = time.perf_counter()
    samples = [(0.0, rss_bytes(pid))]
    while process.poll() is None:
        time.sleep(0.1)
        samples.append((time.perf_counter() - start, rss_bytes(pid)))
    if process.returncode != 0:
        raise RuntimeError(f"{process.args[0]} exited {process.returncode}")
    return time.perf_counter() - start, samples


def rss_figures(prefix: str, samples: list[tuple[float, int]], elapsed: float) -> dict:
    tenth = next((rss for t, rss in samples if t >= elapsed / 10), samples[0][1])
    return {
        f"{prefix}_rss_at_10pct_mb": round(tenth / 2**20, 1),
        f"{prefix}_rss_peak_mb": round(max(r for _, r in samples) / 2**20, 1),
        f"{prefix}_rss_end_mb": round(samples[-1][1] / 2**20, 1),
    }


def measure(count: int) -> dict:
    """Store `count` instances with storescu, then C-MOVE them all to a DCMTK
    storescp: listener RSS over the store stream, sender RSS over the move,
    CPU per instance of each."""
    work = scratch_dir()
    env = os.environ | {"TCP_NODELAY": "1"}
    dest_port = free_port()
    scp = subprocess.Popen(
        ["/usr/bin/storescp", "-aet", DEST_AE, "--ignore", str(dest_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(dest_port, 10)
        files = ct_study(work / "data", count, size=64, patient_id="MEMORY")
        study_uid = str(dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        with archive(
            work,
            sender=True,
            PACS_LISTENER_PROCESSES="1",
            PACS_REMOTE_AES=f"{DEST_AE}=127.0.0.1:{dest_port}",
        ) as pacs:
            listener, sender = pacs.process.pid, pacs.sender.pid
            time.sleep(1)
            rss_idle = rss_bytes(listener)
            cpu0 = cpu_seconds(listener)
            store = subprocess.Popen(
                ["/usr/bin/storescu", "-aec", "MINI_PACS", "+sd", "127.0.0.1", str(pacs.port)]
                + [str(work / "data")],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            store_seconds, store_samples = sample_while(store, listener)
            listener_cpu = cpu_seconds(listener) - cpu0

            sender_idle = rss_bytes(sender)
            cpu0, listener_cpu0 = cpu_seconds(sender), cpu_seconds(listener)
            move = subprocess.Popen(
                ["/usr/bin/movescu", "-S", "-aec", "MINI_PACS", "-aem", DEST_AE]
                + ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}"]
                + ["127.0.0.1", str(pacs.port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            move_seconds, move_samples = sample_while(move, sender)
            sender_cpu = cpu_seconds(sender) - cpu0
            listener_move_cpu = cpu_seconds(listener) - listener_cpu0
    finally:
        scp.terminate()
        scp.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    return {
        "instances": count,
        "store_seconds": round(store_seconds, 1),
        "store_images_per_s": round(count / store_seconds, 1),
        "listener_rss_idle_mb": round(rss_idle / 2**20, 1),
        **rss_figures("listener", store_samples, store_seconds),
        "listener_cpu_ms_per_stored_instance": round(listener_cpu / count * 1000, 2),
        "move_seconds": round(move_seconds, 1),
        "move_images_per_s": round(count / move_seconds, 1),
        "sender_rss_idle_mb": round(sender_idle / 2**20, 1),
        **rss_figures("sender", move_samples, move_seconds),
        "sender_cpu_ms_per_sent_instance": round(sender_cpu / count * 1000, 2),
        "listener_cpu_ms_per_moved_instance": round(listener_move_cpu / count * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000)
    args = parser.parse_args()
    print(json.dumps(measure(args.count), indent=2))


if __name__ == "__main__":
    main()
