"""C-MOVE and C-GET throughput, next to DCMTK's ceiling and Orthanc.

    python bench/move_bench.py [--count 500] [--runs 3] [--json FILE]

One study of `count` 512x512 16-bit CT images is stored in a throwaway Mini
PACS (the real `minipacs listener` and `minipacs sender`) and, when installed,
in Orthanc; then, interleaved in each run:

- storescu -> storescp: the ceiling for one association (no archive at all);
- movescu -> archive -> storescp (C-MOVE), for Mini PACS and Orthanc;
- getscu <- archive on the same association (C-GET), for both.

DCMTK runs with TCP_NODELAY=1 (Debian's DCMTK only sets it then); storescp
and getscu receive with --ignore so disk speed does not mask network speed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import archive, ct_study, free_port, scratch_dir, timed, wait_for_port  # noqa: E402
from references import orthanc, orthanc_available  # noqa: E402

DCMTK = Path("/usr/bin")
DEST_AE = "BENCH_SCP"
DCMTK_ENV = os.environ | {"TCP_NODELAY": "1"}


def move(port: int, study_uid: str) -> float:
    return timed(
        [
            str(DCMTK / "movescu"),
            "-S",
            "-aec",
            "MINI_PACS",
            "-aem",
            DEST_AE,
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            f"StudyInstanceUID={study_uid}",
            "127.0.0.1",
            str(port),
        ],
        DCMTK_ENV,
    )


def get(port: int, study_uid: str) -> float:
    return timed(
        [
            str(DCMTK / "getscu"),
            "-S",
            "--ignore",
            "-aec",
            "MINI_PACS",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            f"StudyInstanceUID={study_uid}",
            "127.0.0.1",
            str(port),
        ],
        DCMTK_ENV,
    )


def store(port: int, files: list[Path], ae_title: str = "MINI_PACS") -> float:
    return timed(
        [str(DCMTK / "storescu"), "-aec", ae_title, "127.0.0.1", str(port), *map(str, files)],
        DCMTK_ENV,
    )


def measure(count: int, runs: int) -> dict:
    work = scratch_dir()
    times: dict[str, list[float]] = {}
    try:
        files = ct_study(work / "study", count)
        size = sum(f.stat().st_size for f in files)
        from pydicom import dcmread

        study_uid = str(dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        dest_port = free_port()
        with ExitStack() as stack:
            scp = subprocess.Popen(
                [str(DCMTK / "storescp"), "-aet", DEST_AE, "--ignore", str(dest_port)],
                env=DCMTK_ENV,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            stack.callback(scp.wait, 10)
            stack.callback(scp.terminate)
            wait_for_port(dest_port, 10)
            pacs = stack.enter_context(
                archive(work, sender=True, PACS_REMOTE_AES=f"{DEST_AE}=127.0.0.1:{dest_port}")
            )
            targets = {"minipacs": pacs.port}
            if orthanc_available():
                targets["orthanc"] = stack.enter_context(
                    orthanc(work / "orthanc", {DEST_AE: ("127.0.0.1", dest_port)})
                )
            for port in targets.values():
                store(port, files)
            for run in range(runs):
                times.setdefault("ceiling", []).append(store(dest_port, files, DEST_AE))
                for name, port in targets.items():
                    times.setdefault(f"{name}_move", []).append(move(port, study_uid))
                    times.setdefault(f"{name}_get", []).append(get(port, study_uid))
                print(f"  move/get run {run + 1}/{runs} done", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result: dict = {"count": count, "image_bytes": size // count, "runs": runs}
    for name, values in times.items():
        median = statistics.median(values)
        result[name] = {
            "seconds": round(median, 3),
            "images_per_s": round(count / median, 1),
            "mb_per_s": round(size / 1e6 / median, 1),
        }
    return result


def print_table(result: dict) -> None:
    print(
        f"\nC-MOVE / C-GET of one study of {result['count']} CT images of "
        f"{result['image_bytes'] // 1024} KiB to DCMTK storescp, medians of {result['runs']}"
    )
    ceiling = result["ceiling"]["images_per_s"]
    print(f"{'path':<36} {'img/s':>8} {'MB/s':>8} {'of ceiling':>10} {'vs orthanc':>10}")
    labels = {
        "ceiling": "storescu -> storescp (ceiling)",
        "minipacs_move": "minipacs C-MOVE",
        "minipacs_get": "minipacs C-GET",
        "orthanc_move": "orthanc C-MOVE",
        "orthanc_get": "orthanc C-GET",
    }
    for key, label in labels.items():
        if key not in result:
            continue
        row = result[key]
        ref = result.get(key.replace("minipacs", "orthanc")) if key.startswith("minipacs") else None
        vs = f"{row['images_per_s'] / ref['images_per_s']:.2f}x" if ref else "-"
        print(
            f"{label:<36} {row['images_per_s']:>8.1f} {row['mb_per_s']:>8.1f} "
            f"{row['images_per_s'] / ceiling:>10.0%} {vs:>10}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    result = measure(args.count, args.runs)
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
