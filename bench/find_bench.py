"""C-FIND benchmark: load a large index, run the seed's queries, print latencies.

    python bench/find_bench.py [--studies 100000] [--instances-per-study 10]
                               [--patients 20000] [--repeat 20] [--reuse]

Loads `--studies` studies (two series each, `--instances-per-study` instances)
of `--patients` patients into a fresh database (DATABASE_URL's server,
database `minipacs_bench_find` unless --database-url says otherwise), migrated
with `minipacs migrate`. Rows are built from the project's own InstanceRecord
(what C-STORE indexes) and written with COPY into the same columns the
C-STORE upsert (`minipacs.index.instances._UPSERT`) fills. Then it starts a
real `minipacs listener` and times each query with a pynetdicom client (one
association reused) and with DCMTK findscu (one process per query).

With thousands of matches the pynetdicom client, not the listener, sets the
pace: it decodes every C-FIND-RSP in Python (~0.2-0.4 ms of CPU each on the
reference machine, printed as "client cpu"). `--quiet-client` turns off the
client's DEBUG-only per-message logging handlers (pynetdicom's
`_config.LOG_HANDLER_LEVEL = "none"`, `LOG_RESPONSE_IDENTIFIERS = False`),
as an application that does not log PDUs would.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from pydicom.dataset import Dataset
from pynetdicom import AE, _config
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

from minipacs.index.record import InstanceRecord

VENV_BIN = Path(sys.executable).parent
# ~2,500 family names from syllables, so a name query matches a realistic
# handful of patients; every 2,000th patient is a DOE (the seed's query).
_SYLLABLES = ["AN", "BER", "CA", "DEL", "ER", "FO", "GAR", "HAN", "IS", "JO", "KO", "LIN",
              "MAR", "NOR", "OL", "PE", "QUI", "RO", "SON", "TA", "UL", "VAN", "WE", "XI",
              "YA", "ZI", "BRO", "CHEN", "DAS", "ELL", "FER", "GU", "HOL", "IV", "KAR", "LO",
              "MEI", "NA", "OS", "PAR", "RI", "SCH", "TRO", "VIK", "WAL", "YO", "ZHA", "MUL",
              "ERSON", "SEN"]  # fmt: skip
FAMILY = [a + b for a in _SYLLABLES for b in _SYLLABLES]
GIVEN = ["JOHN", "JANE", "MARY", "JAMES", "ANNA", "PETER", "LINDA", "PAUL", "KAREN", "MARK"]
MODALITIES = ["CT", "MR", "CR", "US", "XA", "DX", "MG", "NM"]
DESCRIPTIONS = ["CT CHEST", "MR HEAD", "CR THORAX", "US ABDOMEN", "XA CORONARY", "MG SCREENING"]
SOP_CLASS = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4"}
OTHER_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.7"
ROOT = "1.2.826.0.1.3680043.10.1234"  # bench UIDs: ROOT.<kind>.<n>


def records(args: argparse.Namespace) -> Iterator[InstanceRecord]:
    """Every instance of the bench index, as C-STORE would have recorded it.
    Deterministic; dates spread over 2015-2024 so a one-year range matches ~10%."""
    rng = random.Random(1234)
    per_series = max(1, args.instances_per_study // 2)
    for s in range(1, args.studies + 1):
        p = 1 + (s - 1) % args.patients if s <= args.patients else rng.randint(1, args.patients)
        prng = random.Random(p)
        family = "DOE" if p % 2000 == 1 else prng.choice(FAMILY)
        patient_name = f"{family}^{prng.choice(GIVEN)}"
        year, day = rng.randint(2015, 2024), rng.randint(0, 364)
        date = time.strftime("%Y%m%d", time.strptime(f"{year} {day + 1}", "%Y %j"))
        clock = f"{rng.randint(7, 19):02d}{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}"
        for k in range(2):
            modality = rng.choice(MODALITIES)
            count = per_series if k == 0 else args.instances_per_study - per_series
            for n in range(1, count + 1):
                yield InstanceRecord(
                    patient_id=f"PAT{p:03d}",
                    patient_name=patient_name,
                    patient_birth_date=f"{1930 + p % 80}{1 + p % 12:02d}{1 + p % 28:02d}",
                    patient_sex="MF"[p % 2],
                    study_instance_uid=f"{ROOT}.1.{s}",
                    study_date=date,
                    study_time=clock,
                    accession_number=f"ACC{s:08d}",
                    study_description=DESCRIPTIONS[s % len(DESCRIPTIONS)],
                    referring_physician_name="WELBY^MARCUS",
                    study_id=str(s),
                    series_instance_uid=f"{ROOT}.2.{s}.{k + 1}",
                    modality=modality,
                    series_number=k + 1,
                    series_description=f"{modality} series {k + 1}",
                    body_part_examined="CHEST",
                    sop_instance_uid=f"{ROOT}.3.{s}.{k + 1}.{n}",
                    sop_class_uid=SOP_CLASS.get(modality, OTHER_SOP_CLASS),
                    instance_number=n,
                )


def load(url: str, args: argparse.Namespace) -> None:
    """COPY the records into the four index tables: one row per patient,
    study and series (first instance's values, as the upsert's COALESCE keeps
    them), one per instance, with the same relative file path C-STORE writes."""
    started = time.monotonic()
    ids: dict[str, dict[str, int]] = {"p": {}, "st": {}, "se": {}}
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        rows = {"p": [], "st": [], "se": [], "i": []}

        def flush() -> None:
            copies = {
                "p": "patients (id, patient_id, patient_name, patient_birth_date, patient_sex)",
                "st": "studies (id, patient_fk, study_instance_uid, study_date, study_time,"
                " accession_number, study_description, referring_physician_name, study_id)",
                "se": "series (id, study_fk, series_instance_uid, modality, series_number,"
                " series_description, body_part_examined)",
                "i": "instances (series_fk, sop_instance_uid, sop_class_uid, instance_number,"
                " transfer_syntax_uid, file_path, file_size, calling_ae)",
            }
            for key, target in copies.items():
                with cur.copy(f"COPY {target} FROM STDIN") as cp:
                    for row in rows[key]:
                        cp.write_row(row)
                rows[key].clear()

        for count, r in enumerate(records(args), start=1):
            if r.patient_id not in ids["p"]:
                ids["p"][r.patient_id] = pid = len(ids["p"]) + 1
                rows["p"].append(
                    (pid, r.patient_id, r.patient_name, r.patient_birth_date, r.patient_sex)
                )
            if r.study_instance_uid not in ids["st"]:
                ids["st"][r.study_instance_uid] = sid = len(ids["st"]) + 1
                rows["st"].append(
                    (sid, ids["p"][r.patient_id], r.study_instance_uid, r.study_date,
                     r.study_time, r.accession_number, r.study_description,
                     r.referring_physician_name, r.study_id)
                )  # fmt: skip
            if r.series_instance_uid not in ids["se"]:
                ids["se"][r.series_instance_uid] = eid = len(ids["se"]) + 1
                rows["se"].append(
                    (eid, ids["st"][r.study_instance_uid], r.series_instance_uid, r.modality,
                     r.series_number, r.series_description, r.body_part_examined)
                )  # fmt: skip
            path = f"{r.study_instance_uid}/{r.series_instance_uid}/{r.sop_instance_uid}.dcm"
            rows["i"].append(
                (ids["se"][r.series_instance_uid], r.sop_instance_uid, r.sop_class_uid,
                 r.instance_number, "1.2.840.10008.1.2.1", path, 1024 + count % 512, "BENCH")
            )  # fmt: skip
            if len(rows["i"]) >= 50000:
                flush()
        flush()
        for table in ("patients", "studies", "series"):
            setval = "SELECT setval(pg_get_serial_sequence({t}, 'id'), max(id)) FROM {i}"
            cur.execute(sql.SQL(setval).format(t=sql.Literal(table), i=sql.Identifier(table)))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(
        f"loaded {len(ids['p'])} patients, {len(ids['st'])} studies, {len(ids['se'])} series, "
        f"{count} instances in {time.monotonic() - started:.1f}s"
    )


def prepare_database(url: str, admin_url: str, args: argparse.Namespace) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    if args.reuse:
        try:
            with psycopg.connect(url) as conn:
                (n,) = conn.execute("SELECT count(*) FROM studies").fetchone()
            if n == args.studies:
                print(f"reusing {name}: {n} studies")
                return
        except psycopg.Error:
            pass
    with psycopg.connect(admin_url, autocommit=True) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    subprocess.run(
        [str(VENV_BIN / "minipacs"), "migrate"],
        env=os.environ | {"DATABASE_URL": url, "PACS_LOG_LEVEL": "WARNING"},
        check=True,
    )
    load(url, args)


@contextmanager
def listener(url: str, port: int, max_results: int) -> Iterator[None]:
    env = os.environ | {
        "DATABASE_URL": url,
        "PACS_PORT": str(port),
        "PACS_STORAGE_DIR": "/tmp/minipacs-bench-find",
        "PACS_LOG_LEVEL": "WARNING",
        "PACS_FIND_MAX_RESULTS": str(max_results),
    }
    proc = subprocess.Popen([str(VENV_BIN / "minipacs"), "listener"], env=env)
    try:
        deadline = time.monotonic() + 30
        while not echo(port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("listener did not start")
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        proc.wait(30)


def echo(port: int) -> bool:
    ae = AE("BENCH")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="MINI_PACS")
    if not assoc.is_established:
        return False
    assoc.release()
    return True


def queries(url: str) -> list[tuple[str, str, dict[str, str]]]:
    """(name, model flag, keys): the seed's five queries, a wildcard name and a date range."""
    with psycopg.connect(url) as conn:
        (study_uid,) = conn.execute(
            "SELECT study_instance_uid FROM studies ORDER BY id LIMIT 1"
        ).fetchone()
    return [
        ("seed: all patients", "P",
         {"QueryRetrieveLevel": "PATIENT", "PatientName": "*", "PatientID": ""}),
        ("seed: patient DOE*", "P", {"QueryRetrieveLevel": "PATIENT", "PatientName": "DOE*"}),
        ("seed: studies of PAT001", "S",
         {"QueryRetrieveLevel": "STUDY", "PatientID": "PAT001", "StudyDate": "",
          "StudyDescription": "", "AccessionNumber": ""}),
        ("seed: studies in 2024", "S",
         {"QueryRetrieveLevel": "STUDY", "StudyDate": "20240101-20241231"}),
        ("seed: series of a study", "S",
         {"QueryRetrieveLevel": "SERIES", "StudyInstanceUID": study_uid, "Modality": "",
          "SeriesDescription": ""}),
        ("studies of *ERSON^JO*", "S",
         {"QueryRetrieveLevel": "STUDY", "PatientName": "*ERSON^JO*", "StudyDate": "",
          "ModalitiesInStudy": "", "NumberOfStudyRelatedInstances": ""}),
        ("studies 2024-03-01..07 08-12h", "S",
         {"QueryRetrieveLevel": "STUDY", "StudyDate": "20240301-20240307",
          "StudyTime": "080000-120000", "PatientName": "", "AccessionNumber": ""}),
    ]  # fmt: skip


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def run_pynetdicom(port: int, qs: list, repeat: int) -> dict[str, tuple[float, float, int, float]]:
    ae = AE("BENCH")
    ae.add_requested_context(PatientRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.maximum_pdu_size = 0
    assoc = ae.associate("127.0.0.1", port, ae_title="MINI_PACS")
    assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    models = {
        "P": PatientRootQueryRetrieveInformationModelFind,
        "S": StudyRootQueryRetrieveInformationModelFind,
    }
    results = {}
    for name, model, keys in qs:
        ds = Dataset()
        for k, v in keys.items():
            setattr(ds, k, v)
        samples, cpu, matches = [], [], 0
        for _ in range(repeat + 1):  # the first run warms caches and is dropped
            start, start_cpu = time.perf_counter(), time.process_time()
            matches = 0
            for rsp, _ in assoc.send_c_find(ds, models[model]):
                if rsp.Status in (0xFF00, 0xFF01):
                    matches += 1
                elif rsp.Status != 0:
                    raise SystemExit(f"{name}: status 0x{rsp.Status:04X}")
            samples.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        samples = samples[1:]
        results[name] = (pct(samples, 0.5), pct(samples, 0.95), matches, pct(cpu[1:], 0.5))
    assoc.release()
    return results


def run_findscu(port: int, qs: list, repeat: int) -> dict[str, tuple[float, float]]:
    results = {}
    for name, model, keys in qs:
        args = ["/usr/bin/findscu", "-aec", "MINI_PACS", f"-{model}"]
        for k, v in keys.items():
            args += ["-k", f"{k}={v}" if v else k]
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run([*args, "127.0.0.1", str(port)], check=True, capture_output=True)
            samples.append(time.perf_counter() - start)
        results[name] = (pct(samples, 0.5), pct(samples, 0.95))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=100000)
    parser.add_argument("--instances-per-study", type=int, default=10)
    parser.add_argument("--patients", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per query")
    parser.add_argument("--findscu-repeat", type=int, default=5)
    parser.add_argument("--max-results", type=int, default=10000)
    parser.add_argument("--reuse", action="store_true", help="keep a database of the same size")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--quiet-client",
        action="store_true",
        help="no DEBUG logging handlers in the pynetdicom client (see the docstring)",
    )
    parser.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/minipacs_bench_find",
    )
    args = parser.parse_args()
    if args.quiet_client:
        _config.LOG_HANDLER_LEVEL = "none"
        _config.LOG_RESPONSE_IDENTIFIERS = False
    admin = args.database_url.rsplit("/", 1)[0] + "/postgres"
    prepare_database(args.database_url, admin, args)
    qs = queries(args.database_url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with listener(args.database_url, port, args.max_results):
        net = run_pynetdicom(port, qs, args.repeat)
        dcmtk = run_findscu(port, qs, args.findscu_repeat)
    print(
        f"\n{args.studies} studies, {args.studies * args.instances_per_study} instances, "
        f"{args.patients} patients; pynetdicom x{args.repeat}"
        f"{' (quiet client)' if args.quiet_client else ''}, findscu x{args.findscu_repeat}"
    )
    print(
        f"{'query':<32} {'matches':>7} {'pynetdicom p50/p95 ms':>22} {'findscu p50/p95 ms':>20}"
        f" {'client cpu ms':>14}"
    )
    for name, _, _ in qs:
        p50, p95, matches, cpu50 = net[name]
        f50, f95 = dcmtk[name]
        print(
            f"{name:<32} {matches:>7} {p50:>10.1f} /{p95:>8.1f} {f50:>9.1f} /{f95:>8.1f}"
            f" {cpu50:>14.1f}"
        )
    if args.json:
        rows = [
            {
                "query": name,
                "matches": net[name][2],
                "pynetdicom_p50_ms": round(net[name][0], 1),
                "pynetdicom_p95_ms": round(net[name][1], 1),
                "findscu_p50_ms": round(dcmtk[name][0], 1),
                "findscu_p95_ms": round(dcmtk[name][1], 1),
            }
            for name, _, _ in qs
        ]
        args.json.write_text(
            json.dumps(
                {
                    "studies": args.studies,
                    "instances": args.studies * args.instances_per_study,
                    "patients": args.patients,
                    "rows": rows,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
