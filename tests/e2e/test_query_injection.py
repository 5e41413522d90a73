"""SQL metacharacters and wildcards in every C-FIND and MWL query key, sent
by DCMTK findscu and pynetdicom against stored data that holds such
characters itself: they are data. Each query is answered either with exactly
the matches the PS3.4 C.2.2.2 rules give for the stored values (read back
with SQL) or, for a value its VR cannot hold, with a failure status and a
comment; the listener logs no error and the tables are intact afterwards.

The archive has a database of its own so the expected matches are known."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind as MWL
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind as PATIENT_ROOT,
)
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind as STUDY_ROOT,
)

from minipacs.worklist.matching import SPS_KEYS, TOP_KEYS
from tests.conftest import ADMIN_URL
from tests.e2e.fault_helpers import c_find, store
from tests.helpers import DCMTK_BIN, VENV_BIN, Pacs, make_dataset

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on odd values

# Stored in every text attribute of one patient/study/series/instance and one
# worklist item each (16 characters at most: they go into SH and CS too).
STORED = [
    "O'Brien",
    "50%_off",
    "100%",
    "a_b",
    "a%b",
    "x';DROP TABLE x",
    "1' OR '1'='1",
    "--comment",
    "a;b",
    'say "hi"',
    "$1$2",
    "%s%(x)s",
    "a*b",
    "a?b",
    "Müller_%",
    "山田%",
    "^=^",
    '"; --',
]
# Queried besides the stored values: wildcards around metacharacters, and
# values stored nowhere (a backslash makes a list of values).
TEXT_QUERIES = STORED + [
    "'",
    "%",
    "_",
    "*%*",
    "*_*",
    "*'*",
    "?'*",
    "a?b",
    "A%B",
    "o'brien",
    "';--",
    "'; DROP TABLE patients; --",
    "x\\' OR 1=1 --",
    '*"*',
]
DA_QUERIES = ["20240101' OR '1'='1", "2024%", "*", "2024010_", "'", "20240101-20240131;", "-;"]
TM_QUERIES = ["10%", "1015' --", "*", "_", "10-'"]
IS_QUERIES = ["1 OR 1=1", "1;--", "%", "1'", "*"]
DOES_NOT_MATCH, UNABLE = 0xA900, 0xC000
MAX_LENGTH = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "UI": 64, "PN": 64}


def cs(value: str) -> str:
    """CS has the default repertoire only: non-ASCII values cannot be encoded."""
    return value if value.isascii() else f"NONASCII{len(value)}"


@dataclass
class Archive:
    pacs: Pacs
    uids: list[str]  # a real StudyInstanceUID, to put in UID lists


@pytest.fixture(scope="module")
def archive(start_listener: Callable[..., Pacs], base_env: dict[str, str]) -> Iterator[Archive]:
    url = base_env["DATABASE_URL"] + "_inj" + uuid.uuid4().hex[:6]
    migrated = subprocess.run(
        [str(VENV_BIN / "minipacs"), "migrate"],
        env=base_env | {"DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr
    pacs = start_listener(DATABASE_URL=url)
    pacs.database_url = url
    try:
        datasets = [
            make_dataset(
                patient_id=h,
                patient_name=h,
                modality=cs(h),
                study_date=f"202401{n + 1:02d}",
                study_time=f"{8 + n % 12:02d}0000",
                accession=h,
                study_description=h,
                series_number=n + 1,
                instance_number=n + 1,
                extra={
                    "SpecificCharacterSet": "ISO_IR 192",
                    "PatientName": h,  # again, now in UTF-8
                    "PatientSex": cs(h),
                    "StudyID": h,
                    "ReferringPhysicianName": h,
                    "SeriesDescription": h,
                    "BodyPartExamined": cs(h),
                },
            )
            for n, h in enumerate(STORED)
        ]
        assert [s.Status for s in store(pacs, datasets)] == [0] * len(STORED)
        items = [
            dict(
                patient_id=h,
                patient_name=h,
                accession=h,
                modality="A_B" if n % 2 else "AXB",  # the CLI takes CS characters only
                date=f"202401{n + 1:02d}",
                birth_date="19700101",
                sex="O",
                station_ae="CT01",
                time="100000",
                description=h,
                requested_procedure_id=h,
                step_id=h,
                study_uid=generate_uid(),
                requesting_physician=h,
                performing_physician=h,
            )
            for n, h in enumerate(STORED)
        ]
        path = Path(pacs.storage_dir).parent / "worklist.json"
        path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
        imported = pacs.minipacs("worklist", "import", str(path))
        assert imported.returncode == 0, imported.stderr
        yield Archive(pacs, [ds.StudyInstanceUID for ds in datasets])
    finally:
        pacs.process.stop()
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


# --- the rules, spelled out ------------------------------------------------


def dicom_matches(pattern: str, value: str | None, *, fold: bool = False) -> bool:
    """C.2.2.2.1 single value and C.2.2.2.4 wildcard matching."""
    if value is None:
        return False
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (re.IGNORECASE if fold else 0)
    return re.fullmatch(regex, value, flags) is not None


def pn_matches(query: str, stored: str | None) -> bool:
    """Case-insensitive PN: a value without `=` against any component group,
    `A=I=P` group by group (an empty or `*` group matches anything)."""
    groups = (stored or "").split("=") + ["", ""]
    if "=" not in query:
        return stored is not None and any(dicom_matches(query, g, fold=True) for g in groups[:3])
    return stored is not None and all(
        dicom_matches(q, groups[n], fold=True)
        for n, q in enumerate(query.split("=")[:3])
        if q.strip("*")
    )


@dataclass(frozen=True)
class Key:
    model: str
    level: str
    keyword: str
    vr: str
    sql: str  # (unique key of the level, stored value) for every entity


P, ST = "FROM patients p", "FROM studies st JOIN patients p ON p.id = st.patient_fk"
SE = "FROM series se JOIN studies st ON st.id = se.study_fk"
IM = "FROM instances i"
CFIND_KEYS = [
    Key(PATIENT_ROOT, "PATIENT", "PatientID", "LO", f"SELECT p.patient_id, p.patient_id {P}"),
    Key(PATIENT_ROOT, "PATIENT", "PatientName", "PN", f"SELECT p.patient_id, p.patient_name {P}"),
    Key(PATIENT_ROOT, "PATIENT", "PatientSex", "CS", f"SELECT p.patient_id, p.patient_sex {P}"),
    Key(PATIENT_ROOT, "PATIENT", "PatientBirthDate", "DA",
        f"SELECT p.patient_id, p.patient_birth_date {P}"),
    Key(STUDY_ROOT, "STUDY", "PatientID", "LO", f"SELECT st.study_instance_uid, p.patient_id {ST}"),
    Key(STUDY_ROOT, "STUDY", "PatientName", "PN",
        f"SELECT st.study_instance_uid, p.patient_name {ST}"),
    Key(STUDY_ROOT, "STUDY", "AccessionNumber", "SH",
        f"SELECT st.study_instance_uid, st.accession_number {ST}"),
    Key(STUDY_ROOT, "STUDY", "StudyDescription", "LO",
        f"SELECT st.study_instance_uid, st.study_description {ST}"),
    Key(STUDY_ROOT, "STUDY", "StudyID", "SH", f"SELECT st.study_instance_uid, st.study_id {ST}"),
    Key(STUDY_ROOT, "STUDY", "ReferringPhysicianName", "PN",
        f"SELECT st.study_instance_uid, st.referring_physician_name {ST}"),
    Key(STUDY_ROOT, "STUDY", "ModalitiesInStudy", "CS=",
        f"SELECT st.study_instance_uid, se.modality {SE}"),
    Key(STUDY_ROOT, "STUDY", "StudyDate", "DA",
        f"SELECT st.study_instance_uid, st.study_date {ST}"),
    Key(STUDY_ROOT, "STUDY", "StudyTime", "TM", ""),
    Key(STUDY_ROOT, "STUDY", "StudyInstanceUID", "UI",
        f"SELECT st.study_instance_uid, st.study_instance_uid {ST}"),
    Key(STUDY_ROOT, "SERIES", "Modality", "CS",
        f"SELECT se.series_instance_uid, se.modality {SE}"),
    Key(STUDY_ROOT, "SERIES", "SeriesDescription", "LO",
        f"SELECT se.series_instance_uid, se.series_description {SE}"),
    Key(STUDY_ROOT, "SERIES", "BodyPartExamined", "CS",
        f"SELECT se.series_instance_uid, se.body_part_examined {SE}"),
    Key(STUDY_ROOT, "SERIES", "SeriesNumber", "IS",
        f"SELECT se.series_instance_uid, se.series_number {SE}"),
    Key(STUDY_ROOT, "SERIES", "SeriesInstanceUID", "UI",
        f"SELECT se.series_instance_uid, se.series_instance_uid {SE}"),
    Key(STUDY_ROOT, "IMAGE", "SOPInstanceUID", "UI",
        f"SELECT i.sop_instance_uid, i.sop_instance_uid {IM}"),
    Key(STUDY_ROOT, "IMAGE", "SOPClassUID", "UI",
        f"SELECT i.sop_instance_uid, i.sop_class_uid {IM}"),
    Key(STUDY_ROOT, "IMAGE", "InstanceNumber", "IS",
        f"SELECT i.sop_instance_uid, i.instance_number {IM}"),
]  # fmt: skip
UNIQUE = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}


def queries(key: Key, archive: Archive) -> list[str]:
    if key.vr == "DA":
        return DA_QUERIES + ["20240103-20240106", "-20240102"]
    if key.vr == "TM":
        return TM_QUERIES
    if key.vr == "IS":
        return IS_QUERIES
    if key.vr == "UI":
        uid = archive.uids[0]
        return [
            "1.2' OR '1'='1",
            "1.2%",
            "1.2_3",
            "*",
            "'; --",
            f"{uid}\\' OR 1=1",
            f"{uid}' --",
            f"%{uid[2:]}",
        ]
    if key.vr.startswith("CS"):
        return [q for q in TEXT_QUERIES if q.isascii()]
    return TEXT_QUERIES


_ROWS: dict[tuple[str, str], list[tuple]] = {}


def stored(pacs: Pacs, sql: str) -> list[tuple]:
    """Rows of `sql`, read once (the stored data does not change)."""
    if (pacs.database_url, sql) not in _ROWS:
        _ROWS[pacs.database_url, sql] = pacs.rows(sql)
    return _ROWS[pacs.database_url, sql]


def expected(key: Key, query: str, pacs: Pacs) -> int | set[str]:
    """The failure status, or the unique keys of the matching entities."""
    values = [v.strip(" ") for v in query.split("\\")]
    if key.vr in ("DA", "TM"):
        low, dash, high = query.partition("-")
        if not re.fullmatch(r"\d{8}", low or "0" * 8) or not re.fullmatch(
            r"\d{8}", high or "0" * 8
        ):
            return UNABLE
        rows = stored(pacs, key.sql)
        return {u for u, v in rows if (not low or v >= low) and (not high or v <= high)}
    if key.vr == "IS":  # a lone "*" is universal matching (C.2.2.2.3)
        return {u for u, _ in stored(pacs, key.sql)} if query == "*" else UNABLE
    limit = MAX_LENGTH.get(key.vr.rstrip("="))
    groups = [g for v in values for g in (v.split("=") if key.vr == "PN" else [v])]
    if limit and any(len(g) > limit for g in groups):
        return UNABLE
    rows = stored(pacs, key.sql)
    if key.vr != "UI" and any(v.strip("*") == "" for v in values):
        return {u for u, _ in rows}
    if key.vr in ("UI", "CS="):
        return {u for u, v in rows if v in values}
    if key.vr == "PN":
        return {u for u, v in rows if any(pn_matches(q, v) for q in values)}
    return {u for u, v in rows if any(dicom_matches(q, v) for q in values)}


# --- C-FIND --------------------------------------------------------------------


def cfind_identifier(key: Key, value: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = key.level
    ds.add_new(Tag(UNIQUE[key.level]), "UI" if key.level != "PATIENT" else "LO", "")
    tag = Tag(key.keyword)
    if key.vr == "IS":  # pydicom would refuse to encode these
        encoded = value.encode() + b" " * (len(value.encode()) % 2)
        ds[tag] = RawDataElement(tag, "IS", len(encoded), encoded, 0, False, True)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            setattr(ds, key.keyword, value)
    return ds


def pynetdicom_find(assoc, key: Key, value: str) -> int | set[str]:
    responses = c_find(assoc, cfind_identifier(key, value), key.model)
    assert responses and assoc.is_established, (key.keyword, value)
    final = responses[-1][0]
    if final.Status != 0:
        assert len(responses) == 1 and final.get("ErrorComment"), (key.keyword, value)
        return final.Status
    assert all(r.Status in (0xFF00, 0xFF01) for r, _ in responses[:-1])
    return {str(ds.get(UNIQUE[key.level])) for _, ds in responses[:-1]}


def associate(pacs: Pacs, *contexts: str):
    ae = AE(ae_title="INJECTION")
    for context in contexts:
        ae.add_requested_context(context)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
    assert assoc.is_established
    # Command and identifier go in two PDUs: without this, Nagle's algorithm
    # and delayed ACKs cost 40 ms a query.
    assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return assoc


def outcome_matches(want: int | set[str], got: int | set[str]) -> bool:
    if isinstance(want, int):
        return isinstance(got, int) and got in (UNABLE, DOES_NOT_MATCH)
    return got == want


def test_cfind_every_key_with_pynetdicom(archive: Archive) -> None:
    pacs = archive.pacs
    assoc = associate(pacs, PATIENT_ROOT, STUDY_ROOT)
    wrong = []
    tried = 0
    try:
        for key in CFIND_KEYS:
            for value in queries(key, archive):
                want = expected(key, value, pacs)
                got = pynetdicom_find(assoc, key, value)
                tried += 1
                if not outcome_matches(want, got):
                    wrong.append((key.level, key.keyword, value, want, got))
    finally:
        assoc.release()
    assert not wrong, wrong
    assert tried > 300
    assert_clean(pacs)


def findscu(pacs: Pacs, out: Path, args: list[str]) -> tuple[str, list[Dataset]]:
    out.mkdir(parents=True)
    result = subprocess.run(
        [str(DCMTK_BIN / "findscu"), "-v", "-aec", pacs.ae_title, *args, "-X", "-od", str(out),
         pacs.host, str(pacs.port)],
        capture_output=True,
        text=True,
        timeout=30,
    )  # fmt: skip
    output = result.stdout + result.stderr
    final = re.search(r"Received Final Find Response \(([^)]*)\)", output)
    assert final, output
    return final.group(1), [dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


FINDSCU_TEXT = ["O'Brien", "50%_off", "*%*", "?'*", "1' OR '1'='1", "'; DROP TABLE patients; --"]


def test_cfind_every_key_with_findscu(archive: Archive, tmp_path: Path) -> None:
    pacs = archive.pacs
    wrong = []
    for n, key in enumerate(CFIND_KEYS):
        values = queries(key, archive)
        values = [v for v in values if v in FINDSCU_TEXT] or values[:4]
        for m, value in enumerate(values):
            root = "-P" if key.model == PATIENT_ROOT else "-S"
            args = [root, "-k", "SpecificCharacterSet=ISO_IR 192",
                    "-k", f"QueryRetrieveLevel={key.level}", "-k", UNIQUE[key.level],
                    "-k", f"{key.keyword}={value}"]  # fmt: skip
            final, found = findscu(pacs, tmp_path / f"{n}-{m}", args)
            want = expected(key, value, pacs)
            if isinstance(want, int):
                ok = final != "Success" and not found
            else:
                ok = final == "Success" and {str(ds.get(UNIQUE[key.level])) for ds in found} == want
            if not ok:
                wrong.append((key.level, key.keyword, value, want, final, len(found)))
    assert not wrong, wrong
    assert_clean(pacs)


# --- Modality Worklist -----------------------------------------------------------------


def mwl_expected(keyword: str, query: str, pacs: Pacs) -> int | set[str]:
    key = TOP_KEYS.get(keyword) or SPS_KEYS[keyword]
    value = query.strip(" ")
    rows = stored(pacs, f"SELECT study_instance_uid, {key.column} FROM worklist")
    if value in ("", "*"):
        return {u for u, _ in rows}
    if key.kind == "uid":
        uids = [u.strip() for u in value.split("\\")]
        if not all(re.fullmatch(r"[0-9]+(\.[0-9]+)*", u) for u in uids):
            return DOES_NOT_MATCH
        return {u for u, v in rows if v in uids}
    if key.kind in ("date", "time"):
        return DOES_NOT_MATCH  # only malformed ones are sent
    return {u for u, v in rows if dicom_matches(value, v, fold=key.kind == "pn")}


def mwl_queries(keyword: str, archive: Archive) -> list[str]:
    key = TOP_KEYS.get(keyword) or SPS_KEYS[keyword]
    if key.kind == "date":
        return DA_QUERIES[:2] + DA_QUERIES[3:]  # "*" is universal in MWL
    if key.kind == "time":
        return TM_QUERIES[:2] + TM_QUERIES[3:]
    if key.kind == "uid":
        return queries(CFIND_KEYS[13], archive)
    if dictionary_VR(keyword) in ("CS", "AE"):  # default repertoire only
        return [q for q in TEXT_QUERIES if "\\" not in q and q.isascii()]
    return [q for q in TEXT_QUERIES if "\\" not in q]


def mwl_identifier(keyword: str, value: str, in_sequence: bool) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.StudyInstanceUID = ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if in_sequence:
            item = Dataset()
            setattr(item, keyword, value)
            ds.ScheduledProcedureStepSequence = Sequence([item])
        elif keyword == "StudyInstanceUID":
            ds.StudyInstanceUID = value
        else:
            setattr(ds, keyword, value)
    return ds


def test_mwl_every_key_with_pynetdicom(archive: Archive) -> None:
    pacs = archive.pacs
    assoc = associate(pacs, MWL)
    wrong = []
    try:
        for keyword in [*TOP_KEYS, *SPS_KEYS]:
            for in_sequence in (False, True) if keyword in SPS_KEYS else (False,):
                for value in mwl_queries(keyword, archive):
                    want = mwl_expected(keyword, value, pacs)
                    responses = c_find(assoc, mwl_identifier(keyword, value, in_sequence), MWL)
                    assert assoc.is_established
                    final = responses[-1][0]
                    if final.Status != 0:
                        assert final.get("ErrorComment"), (keyword, value)
                        got: int | set[str] = final.Status
                    else:
                        got = {str(ds.StudyInstanceUID) for _, ds in responses[:-1]}
                    if not outcome_matches(want, got):
                        wrong.append(
                            (
                                keyword,
                                in_sequence,
                                value,
                                len(want) if isinstance(want, set) else want,
                                got,
                                [hex(r.Status) for r, _ in responses],
                            )
                        )
    finally:
        assoc.release()
    assert not wrong, wrong
    assert_clean(pacs)


def test_mwl_keys_with_findscu(archive: Archive, tmp_path: Path) -> None:
    pacs = archive.pacs
    wrong = []
    for n, keyword in enumerate([*TOP_KEYS, *SPS_KEYS]):
        values = [v for v in mwl_queries(keyword, archive) if v in FINDSCU_TEXT]
        values = values or mwl_queries(keyword, archive)[:3]
        for m, value in enumerate(values):
            place = "ScheduledProcedureStepSequence[0]." if keyword in SPS_KEYS else ""
            args = [
                "-W",
                "-k",
                "SpecificCharacterSet=ISO_IR 192",
                "-k",
                f"{place}{keyword}={value}",
            ]
            if keyword != "StudyInstanceUID":
                args += ["-k", "StudyInstanceUID"]
            final, found = findscu(pacs, tmp_path / f"{n}-{m}", args)
            want = mwl_expected(keyword, value, pacs)
            if isinstance(want, int):
                ok = final != "Success" and not found
            else:
                ok = final == "Success" and {str(ds.StudyInstanceUID) for ds in found} == want
            if not ok:
                wrong.append((keyword, value, want, final, len(found)))
    assert not wrong, wrong
    assert_clean(pacs)


def assert_clean(pacs: Pacs) -> None:
    """No SQL error or unexpected failure logged; every row still there."""
    log = pacs.process.log()
    for trace in ("Traceback", "failed unexpectedly", "psycopg", "syntax error", "SQL"):
        assert trace not in log, f"{trace!r} in the listener log:\n{log[-3000:]}"
    counts = pacs.rows(
        "SELECT (SELECT count(*) FROM patients), (SELECT count(*) FROM studies), "
        "(SELECT count(*) FROM series), (SELECT count(*) FROM instances), "
        "(SELECT count(*) FROM worklist)"
    )
    assert counts == [(len(STORED),) * 5]
    names = {r[0] for r in pacs.rows("SELECT patient_name FROM patients")}
    assert names == set(STORED)
