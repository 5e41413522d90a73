"""C-STORE throughput: DCMTK storescu into Mini PACS, DCMTK storescp (the
ceiling, no index) and Orthanc (when installed), interleaved in one run.

    python bench/store_bench.py [--count 500] [--runs 3] [--processes 4]

Each measurement sends a fresh study (new UIDs: nothing is a duplicate) of
512x512 16-bit CT images over 1 association, or over 4 at once (the files
split in 4), with and without TCP_NODELAY in storescu's environment.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import archive, ct_study, scratch_dir  # noqa: E402
from references import orthanc, orthanc_available, storescp  # noqa: E402

STORESCU = "/usr/bin/storescu"
# One listener process per association of the 4-association runs (and at
# least one per core): associations sharing a process contend for its GIL.
PROCESSES = max(4, os.cpu_count() or 1)


def send(port: int, files: list[Path], associations: int, nodelay: bool) -> float:
    """storescu over `associations` parallel associations; wall seconds."""
    env = {k: v for k, v in os.environ.items() if k != "TCP_NODELAY"}
    if nodelay:
        env["TCP_NODELAY"] = "1"
    groups = [files[i::associations] for i in range(associations)]
    start = time.perf_counter()
    clients = [
        subprocess.Popen(
            [STORESCU, "-aec", "MINI_PACS", "127.0.0.1", str(port), *map(str, group)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for group in groups
    ]
    for client in clients:
        _, err = client.communicate(timeout=900)
        if client.returncode != 0:
            raise RuntimeError(f"storescu exited {client.returncode}: {err[-2000:]!r}")
    return time.perf_counter() - start


def measure(count: int, runs: int, processes: int) -> dict:
    work = scratch_dir()
    times: dict[tuple[str, int, bool], list[float]] = {}
    try:
        with ExitStack() as stack:
            pacs = stack.enter_context(archive(work, PACS_LISTENER_PROCESSES=str(processes)))
            targets = {
                "minipacs": pacs.port,
                "storescp": stack.enter_context(storescp(work / "storescp")),
            }
            if orthanc_available():
                targets["orthanc"] = stack.enter_context(orthanc(work / "orthanc"))
            for run in range(runs):
                for associations in (1, 4):
                    for nodelay in (True, False):
                        # One study per target, generated fresh; targets interleaved.
                        for target, port in targets.items():
                            data = work / f"data-{target}"
                            files = ct_study(data, count)
                            size = sum(f.stat().st_size for f in files)
                            seconds = send(port, files, associations, nodelay)
                            times.setdefault((target, associations, nodelay), []).append(seconds)
                            shutil.rmtree(data)
                        shutil.rmtree(work / "storescp", ignore_errors=True)
                        (work / "storescp").mkdir()
                print(f"  store run {run + 1}/{runs} done", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for (target, associations, nodelay), values in times.items():
        median = statistics.median(values)
        rows.append(
            {
                "target": target,
                "associations": associations,
                "tcp_nodelay": nodelay,
                "seconds": round(median, 3),
                "images_per_s": round(count / median, 1),
                "mb_per_s": round(size / 1e6 / median, 1),
                "runs": len(values),
            }
        )
    return {
        "count": count,
        "image_bytes": size // count,
        "listener_processes": processes,
        "rows": rows,
    }


def print_table(result: dict) -> None:
    print(
        f"\nC-STORE with storescu: {result['count']} CT images of "
        f"{result['image_bytes'] // 1024} KiB per measurement, medians; minipacs with "
        f"PACS_LISTENER_PROCESSES={result['listener_processes']}"
    )
    by_key = {(r["target"], r["associations"], r["tcp_nodelay"]): r for r in result["rows"]}
    print(
        f"{'target':<10} {'assoc':>5} {'TCP_NODELAY':>11} {'img/s':>8} {'MB/s':>7} "
        f"{'vs orthanc':>10} {'vs storescp':>11}"
    )
    for (target, associations, nodelay), row in sorted(by_key.items()):
        ref = {name: by_key.get((name, associations, nodelay)) for name in ("orthanc", "storescp")}
        ratios = [
            f"{row['images_per_s'] / ref[n]['images_per_s']:.2f}x" if ref[n] else "-"
            for n in ("orthanc", "storescp")
        ]
        print(
            f"{target:<10} {associations:>5} {'yes' if nodelay else 'no':>11} "
            f"{row['images_per_s']:>8.1f} {row['mb_per_s']:>7.1f} {ratios[0]:>10} "
            f"{ratios[1]:>11}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--processes",
        type=int,
        default=PROCESSES,
        help=f"PACS_LISTENER_PROCESSES for minipacs (default: {PROCESSES})",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    result = measure(args.count, args.runs, args.processes)
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
