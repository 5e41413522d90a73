"""C-STORE throughput: DCMTK storescu into Mini PACS, next to DCMTK storescp.

    python bench/store_bench.py [--count 500] [--runs 3]

Each run sends a fresh study (new UIDs, so nothing is a duplicate) of
512x512x16-bit CT images over one association, with and without TCP_NODELAY
in storescu's environment. Prints images/s and MB/s, medians over the runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import archive, ct_study, free_port, scratch_dir, timed, wait_for_port  # noqa: E402

STORESCU = "/usr/bin/storescu"
STORESCP = "/usr/bin/storescp"


def storescu(port: int, files: list[Path], nodelay: bool) -> float:
    env = {k: v for k, v in os.environ.items() if k != "TCP_NODELAY"}
    if nodelay:
        env["TCP_NODELAY"] = "1"
    return timed([STORESCU, "-aec", "MINI_PACS", "127.0.0.1", str(port), *map(str, files)], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    work = scratch_dir()
    results: dict[str, list[float]] = {}
    try:
        with archive(work) as pacs:
            scp_dir = work / "storescp"
            scp_dir.mkdir()
            scp_port = free_port()
            scp = subprocess.Popen(
                [STORESCP, "-aet", "MINI_PACS", "-od", str(scp_dir), str(scp_port)],
                env=os.environ | {"TCP_NODELAY": "1"},
            )
            try:
                wait_for_port(scp_port, 10)
                for run in range(args.runs):
                    for nodelay in (True, False):
                        label = "TCP_NODELAY=1" if nodelay else "no TCP_NODELAY"
                        files = ct_study(work / f"data-{run}-{nodelay}", args.count)
                        size = sum(f.stat().st_size for f in files)
                        for target, port in (
                            ("storescp (ceiling)", scp_port),
                            ("minipacs", pacs.port),
                        ):
                            seconds = storescu(port, files, nodelay)
                            results.setdefault(f"{target}, {label}", []).append(seconds)
                        shutil.rmtree(work / f"data-{run}-{nodelay}")
                        shutil.rmtree(scp_dir)
                        scp_dir.mkdir()
            finally:
                scp.terminate()
                scp.wait(10)
            stored = len(list(pacs.storage.rglob("*.dcm")))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mb = size / 1e6
    print(
        f"\nC-STORE, one storescu association, {args.count} CT images of "
        f"{size / args.count / 1024:.0f} KiB, median of {args.runs} runs "
        f"({stored} instances archived by minipacs)"
    )
    print(f"{'target':<38} {'seconds':>8} {'img/s':>8} {'MB/s':>8}")
    for label, times in results.items():
        median = statistics.median(times)
        print(f"{label:<38} {median:8.2f} {args.count / median:8.1f} {mb / median:8.1f}")


if __name__ == "__main__":
    main()
