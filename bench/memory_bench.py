"""Listener memory and CPU during a long C-STORE stream.

    python bench/memory_bench.py [--count 10000]

Streams `count` small CT instances (64x64) over one storescu association and
samples the listener's resident memory; RSS must not grow with the number of
instances stored.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import archive, ct_study, scratch_dir  # noqa: E402
from procstat import cpu_seconds, rss_bytes  # noqa: E402


def measure(count: int) -> dict:
    work = scratch_dir()
    try:
        ct_study(work / "data", count, size=64, patient_id="MEMORY")
        with archive(work, PACS_LISTENER_PROCESSES="1") as pacs:
            pid = pacs.process.pid
            time.sleep(1)
            cpu0, rss0 = cpu_seconds(pid), rss_bytes(pid)
            client = subprocess.Popen(
                [
                    "/usr/bin/storescu",
                    "-aec",
                    "MINI_PACS",
                    "+sd",
                    "127.0.0.1",
                    str(pacs.port),
                    str(work / "data"),
                ],
                env=os.environ | {"TCP_NODELAY": "1"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            start = time.perf_counter()
            samples = []
            while client.poll() is None:
                samples.append((time.perf_counter() - start, rss_bytes(pid)))
                time.sleep(0.5)
            elapsed = time.perf_counter() - start
            if client.returncode != 0:
                raise RuntimeError(f"storescu exited {client.returncode}")
            cpu = cpu_seconds(pid) - cpu0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    tenth = next((rss for t, rss in samples if t >= elapsed / 10), samples[0][1])
    return {
        "instances": count,
        "seconds": round(elapsed, 1),
        "images_per_s": round(count / elapsed, 1),
        "rss_idle_mb": round(rss0 / 2**20, 1),
        "rss_at_10pct_mb": round(tenth / 2**20, 1),
        "rss_peak_mb": round(max(r for _, r in samples) / 2**20, 1),
        "rss_end_mb": round(samples[-1][1] / 2**20, 1),
        "listener_cpu_ms_per_instance": round(cpu / count * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000)
    args = parser.parse_args()
    print(json.dumps(measure(args.count), indent=2))


if __name__ == "__main__":
    main()
