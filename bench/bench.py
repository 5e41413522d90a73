"""`make bench`: every performance figure in one run, next to the references.

    python bench/bench.py [--quick] [--runs 3] [--skip store,find,move,memory]

- C-STORE img/s and MB/s with DCMTK storescu, 1 and 4 associations, with and
  without TCP_NODELAY in the client's environment; DCMTK storescp (the
  ceiling, no index) and Orthanc (when installed) measured in the same run,
  interleaved, medians of --runs;
- C-FIND latency p50/p95 at 10^4, 10^5 and 10^6 instances (bench/find_bench.py);
- C-MOVE and C-GET img/s for a 500-instance study to a DCMTK storescp
  (bench/move_bench.py), with Orthanc's C-MOVE and C-GET of the same study;
- listener RSS and CPU per instance during a 10,000-instance stream.

Prints one table per section and the targets met or missed, and writes all
figures to bench/results/bench-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import memory_bench  # noqa: E402
import store_bench  # noqa: E402


def run_find(scales: list[int], repeat: int) -> list[dict]:
    """find_bench at each number of studies (10 instances each)."""
    results = []
    for studies in scales:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run(
                [
                    sys.executable,
                    str(HERE / "find_bench.py"),
                    "--studies",
                    str(studies),
                    "--patients",
                    str(max(1, studies // 5)),
                    "--repeat",
                    str(repeat),
                    "--findscu-repeat",
                    "3",
                    "--json",
                    out.name,
                ],
                check=True,
                timeout=3600,
            )
            results.append(json.loads(Path(out.name).read_text()))
    return results


def run_move(count: int, runs: int) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [
                sys.executable,
                str(HERE / "move_bench.py"),
                "--count",
                str(count),
                "--runs",
                str(runs),
                "--json",
                out.name,
            ],
            check=True,
            timeout=3600,
        )
        return json.loads(Path(out.name).read_text())


def targets(figures: dict) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each target of the performance issue."""
    checks: list[tuple[str, str, bool | None]] = []
    store = figures.get("store")
    if store:
        rows = {(r["target"], r["associations"], r["tcp_nodelay"]): r for r in store["rows"]}

        def ratio(assoc: int, nodelay: bool) -> tuple[str, bool | None]:
            ours, ref = (
                rows.get(("minipacs", assoc, nodelay)),
                rows.get(("orthanc", assoc, nodelay)),
            )
            if not ref:
                return f"{ours['images_per_s']} img/s (no Orthanc)", None
            value = ours["images_per_s"] / ref["images_per_s"]
            return (
                f"{ours['images_per_s']} vs {ref['images_per_s']} img/s = {value:.2f}x",
                value >= 1.0,
            )

        for assoc in (1, 4):
            text, met = ratio(assoc, True)
            checks.append((f"C-STORE {assoc} assoc. >= 1.0x Orthanc", text, met))
        default = rows[("minipacs", 1, False)]["images_per_s"]
        checks.append(
            ("C-STORE without TCP_NODELAY >= 100 img/s", f"{default} img/s", default >= 100)
        )
    for scale in figures.get("find", []):
        small = [r for r in scale["rows"] if r["matches"] <= 100]
        worst = max(r["pynetdicom_p50_ms"] for r in small)
        checks.append(
            (
                f"C-FIND p50 < 50 ms at {scale['instances']:,} instances",
                f"worst p50 {worst} ms",
                worst < 50,
            )
        )
    move = figures.get("move")
    if move:
        for kind in ("move", "get"):
            ours, ref = move.get(f"minipacs_{kind}"), move.get(f"orthanc_{kind}")
            if ours and ref:
                value = ours["images_per_s"] / ref["images_per_s"]
                checks.append(
                    (
                        f"C-{kind.upper()} >= 0.5x Orthanc",
                        f"{ours['images_per_s']} vs {ref['images_per_s']} img/s = {value:.2f}x",
                        value >= 0.5,
                    )
                )
    memory = figures.get("memory")
    if memory:
        for side, stream in (("listener", "store"), ("sender", "move")):
            at_10, end = memory[f"{side}_rss_at_10pct_mb"], memory[f"{side}_rss_end_mb"]
            checks.append(
                (
                    f"{side} RSS flat over the {stream} stream",
                    f"{at_10} MB at 10%, {end} MB at end",
                    end - at_10 < 10,
                )
            )
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma-separated sections to leave out")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    quick = args.quick

    figures: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{platform.node()}, {os.cpu_count()} cores, {platform.platform()}",
    }
    if "store" not in skip:
        figures["store"] = store_bench.measure(
            200 if quick else 500, 1 if quick else args.runs, store_bench.PROCESSES
        )
        store_bench.print_table(figures["store"])
    if "find" not in skip:
        figures["find"] = run_find(
            [1000, 10000] if quick else [1000, 10000, 100000], 5 if quick else 20
        )
    if "move" not in skip and (HERE / "move_bench.py").exists():
        figures["move"] = run_move(200 if quick else 500, 1 if quick else args.runs)
    if "memory" not in skip:
        figures["memory"] = memory_bench.measure(2000 if quick else 10000)
        print("\nListener and sender over long streams:", json.dumps(figures["memory"]))

    print(f"\nTargets ({figures['date']}; {figures['machine']})")
    for name, measured, met in targets(figures):
        verdict = {True: "met", False: "NOT met", None: "no reference"}[met]
        print(f"  {name:<45} {measured:<45} {verdict}")
    out = HERE / "results" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    figures["targets"] = targets(figures)
    out.write_text(json.dumps(figures, indent=2))
    print(f"\nfigures written to {out}")


if __name__ == "__main__":
    main()
