"""Property-based tests of the C-FIND and MWL matching run against PostgreSQL:
the SQL the matching functions build is executed on temporary `patients` and
`worklist` tables (they shadow the real ones for this connection only), and
the rows that come back are compared with the PS3.4 C.2.2.2 rules written
out in Python. Values with SQL metacharacters, LIKE's own wildcards, quotes
and any Unicode (NUL excepted) must behave as plain data."""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from minipacs.index.attributes import PATIENT_ROOT
from minipacs.index.matching import MatchOptions, compile_find
from minipacs.index.matching import like_pattern as cfind_like_pattern
from minipacs.worklist.matching import build_query
from minipacs.worklist.matching import like_pattern as mwl_like_pattern

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on odd CS values

BOUNDED = settings(
    max_examples=40,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

HOSTILE = [
    "%",
    "_",
    "'",
    "''",
    '"',
    ";",
    "--",
    "O'Brien",
    "50%_off",
    "a%b_c",
    "'; DROP TABLE patients; --",
    "x' OR '1'='1",
    "Müller",
    "山田^太郎",
    "Ωμέγα",
]
# Any character but NUL (PostgreSQL text cannot hold it), DICOM's wildcards,
# which the wildcard tests add on purpose, and the backslash, DICOM's value
# delimiter (pydicom splits a value there; LIKE's escape character is
# covered by the like_pattern tests below).
PLAIN_CHARS = st.characters(blacklist_characters="\x00*?\\", blacklist_categories=("Cs",))
plain_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(PLAIN_CHARS, min_size=1, max_size=12),
    st.lists(st.sampled_from(HOSTILE + ["a", "B", "1"]), min_size=1, max_size=4).map("".join),
).filter(lambda v: v == v.strip(" ") and v != "" and len(v) <= 64)  # LO
PIECES = ["*", "?", "%", "_", "'", "a", "b", "ü", ";", "--", " x"]
PATTERN_PIECES = st.sampled_from(PIECES)
pattern_text = (
    st.lists(PATTERN_PIECES, min_size=1, max_size=6).map("".join).filter(lambda v: v == v.strip())
)
row_text = st.lists(st.sampled_from(PIECES[2:]), max_size=6).map("".join)
# With the backslash, for the LIKE translation alone.
raw_pattern_text = st.lists(st.sampled_from([*PIECES, "\\"]), min_size=1, max_size=6).map("".join)
raw_row_text = st.lists(st.sampled_from([*PIECES[2:], "\\"]), max_size=6).map("".join)


@pytest.fixture(scope="module")
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("CREATE TEMP TABLE patients (LIKE public.patients INCLUDING DEFAULTS)")
        conn.execute("CREATE TEMP TABLE worklist (LIKE public.worklist INCLUDING DEFAULTS)")
        yield conn


def dicom_matches(pattern: str, value: str, *, fold: bool = False) -> bool:
    """C.2.2.2.4 spelled out: `*` any run, `?` one character, all else literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (re.IGNORECASE if fold else 0)
    return re.fullmatch(regex, value, flags) is not None


@BOUNDED
@given(pattern=raw_pattern_text, rows=st.lists(raw_row_text, min_size=1, max_size=8, unique=True))
def test_like_patterns_escape_percent_underscore_and_backslash(
    conn: psycopg.Connection, pattern: str, rows: list[str]
) -> None:
    """Both translations of DICOM wildcards to LIKE, run by PostgreSQL."""
    expected = {r for r in rows if dicom_matches(pattern, r)}
    for translate in (cfind_like_pattern, mwl_like_pattern):
        got = conn.execute(
            "SELECT v FROM unnest(%s::text[]) AS v WHERE v LIKE %s ESCAPE '\\'",
            [rows, translate(pattern)],
        ).fetchall()
        assert {r[0] for r in got} == expected, translate.__module__


# --- C-FIND (index/matching.py), PATIENT level of the Patient Root model ----


def put_patients(conn: psycopg.Connection, column: str, values: set[str]) -> None:
    conn.execute("TRUNCATE patients")
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO patients (id, patient_id, {column}) VALUES (%s, %s, %s)"
            if column != "patient_id"
            else "INSERT INTO patients (id, patient_id) VALUES (%s, %s)",
            [
                (n, f"ROW{n}", v) if column != "patient_id" else (n, v)
                for n, v in enumerate(sorted(values))
            ],
        )


def find_values(conn: psycopg.Connection, keyword: str, value: str) -> set[str]:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = "PATIENT"
    setattr(ds, keyword, value)
    query = compile_find(ds, PATIENT_ROOT, MatchOptions())
    index = next(k.index for k in query.keys if k.keyword == keyword)
    return {row[index] for row in conn.execute(query.sql, query.params).fetchall()}


def near_misses(value: str) -> set[str]:
    return {
        value,
        value + "x",
        "x" + value,
        value[:-1] or "y",
        value.upper(),
        value.lower(),
        value.replace("%", "a").replace("_", "b") or "z",
        value.replace("'", "''"),
        value.replace("\\", "\\\\"),
    }


@BOUNDED
@given(value=plain_text, others=st.lists(plain_text, max_size=5))
@pytest.mark.parametrize(
    ("keyword", "column"), [("PatientID", "patient_id"), ("PatientSex", "patient_sex")]
)
def test_cfind_wildcard_free_value_matches_only_itself(
    conn: psycopg.Connection, keyword: str, column: str, value: str, others: list[str]
) -> None:
    assume(keyword != "PatientSex" or len(value) <= 16)  # CS: longer values are refused
    put_patients(conn, column, near_misses(value) | set(others))
    assert find_values(conn, keyword, value) == {value}


@BOUNDED
@given(
    value=st.text(
        st.characters(codec="ascii", blacklist_characters="\x00*?=\\"), min_size=1, max_size=16
    ),
    others=st.lists(row_text, max_size=5),
)
def test_cfind_person_name_matches_itself_in_any_case(
    conn: psycopg.Connection, value: str, others: list[str]
) -> None:
    assume(value == value.strip(" ") and value)
    rows = near_misses(value) | set(others)
    put_patients(conn, "patient_name", rows)
    expected = {r for r in rows if r.lower() == value.lower()}
    assert find_values(conn, "PatientName", value) == expected


@BOUNDED
@given(pattern=pattern_text, rows=st.lists(row_text, min_size=1, max_size=8, unique=True))
def test_cfind_wildcards_match_as_the_standard_says(
    conn: psycopg.Connection, pattern: str, rows: list[str]
) -> None:
    values = set(rows) | {pattern.replace("*", "").replace("?", "")}
    values.discard("")
    put_patients(conn, "patient_sex", values)
    expected = {v for v in values if dicom_matches(pattern, v)}
    assert find_values(conn, "PatientSex", pattern) == expected


@BOUNDED
@given(rows=st.lists(plain_text, min_size=1, max_size=8, unique=True))
def test_cfind_star_matches_everything(conn: psycopg.Connection, rows: list[str]) -> None:
    put_patients(conn, "patient_sex", set(rows))
    for star in ("*", "**"):
        assert find_values(conn, "PatientSex", star) == set(rows)


dates = st.dates().map(lambda d: d.strftime("%Y%m%d")).filter(lambda d: len(d) == 8)


@BOUNDED
@given(
    rows=st.lists(dates, min_size=1, max_size=8, unique=True),
    low=st.one_of(st.none(), dates),
    high=st.one_of(st.none(), dates),
)
def test_cfind_date_ranges(conn: psycopg.Connection, rows: list[str], low, high) -> None:
    assume(low or high)
    put_patients(conn, "patient_birth_date", set(rows))
    value = f"{low or ''}-{high or ''}"
    expected = {r for r in rows if (not low or r >= low) and (not high or r <= high)}
    assert find_values(conn, "PatientBirthDate", value) == expected


# --- Modality Worklist (worklist/matching.py) --------------------------------


def put_worklist(conn: psycopg.Connection, column: str, values: set[str]) -> None:
    conn.execute("TRUNCATE worklist")
    base = {
        "patient_id": "P",
        "accession_number": "A",
        "requested_procedure_id": "R",
        "study_instance_uid": "1.2.3",
        "scheduled_procedure_step_id": "S",
        "modality": "CT",
        "scheduled_procedure_step_start_date": "20240101",
    }
    with conn.cursor() as cur:
        for n, value in enumerate(sorted(values)):
            row = base | {column: value}
            cur.execute(
                f"INSERT INTO worklist (id, {', '.join(row)}) "
                f"VALUES (%s, {', '.join(['%s'] * len(row))})",
                [n, *row.values()],
            )


def mwl_values(conn: psycopg.Connection, column: str, identifier: Dataset) -> set[str]:
    sql, params = build_query(identifier)
    return {r[0] for r in conn.execute(f"SELECT {column} FROM ({sql}) q", params).fetchall()}


def mwl_identifier(keyword: str, value: str, *, in_sequence: bool = False) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    if in_sequence:
        item = Dataset()
        setattr(item, keyword, value)
        ds.ScheduledProcedureStepSequence = Sequence([item])
    else:
        setattr(ds, keyword, value)
    return ds


@BOUNDED
@given(value=plain_text, others=st.lists(plain_text, max_size=5))
def test_mwl_wildcard_free_value_matches_only_itself(
    conn: psycopg.Connection, value: str, others: list[str]
) -> None:
    put_worklist(conn, "accession_number", near_misses(value) | set(others))
    assert mwl_values(conn, "accession_number", mwl_identifier("AccessionNumber", value)) == {value}


@BOUNDED
@given(pattern=pattern_text, rows=st.lists(row_text, min_size=1, max_size=8, unique=True))
def test_mwl_wildcards_match_as_the_standard_says(
    conn: psycopg.Connection, pattern: str, rows: list[str]
) -> None:
    values = set(rows) | {pattern.replace("*", "").replace("?", "")}
    put_worklist(conn, "modality", values)
    expected = {v for v in values if dicom_matches(pattern, v)}
    for in_sequence in (False, True):
        identifier = mwl_identifier("Modality", pattern, in_sequence=in_sequence)
        assert mwl_values(conn, "modality", identifier) == expected


@BOUNDED
@given(pattern=pattern_text, rows=st.lists(row_text, min_size=1, max_size=8, unique=True))
def test_mwl_person_name_wildcards_ignore_case(
    conn: psycopg.Connection, pattern: str, rows: list[str]
) -> None:
    values = set(rows) | {pattern.replace("*", "").replace("?", "").upper()}
    put_worklist(conn, "patient_name", values)
    expected = {v for v in values if dicom_matches(pattern, v, fold=True)}
    assert mwl_values(conn, "patient_name", mwl_identifier("PatientName", pattern)) == expected


uids = st.lists(st.from_regex(r"[1-9][0-9]{0,5}", fullmatch=True), min_size=2, max_size=6).map(
    ".".join
)


@BOUNDED
@given(rows=st.lists(uids, min_size=1, max_size=6, unique=True), extra=st.lists(uids, max_size=3))
def test_mwl_uid_list_matches_any_listed(conn: psycopg.Connection, rows, extra) -> None:
    put_worklist(conn, "study_instance_uid", set(rows))
    wanted = rows[: len(rows) // 2 + 1] + extra
    identifier = mwl_identifier("StudyInstanceUID", "\\".join(wanted))
    assert mwl_values(conn, "study_instance_uid", identifier) == set(rows) & set(wanted)


@BOUNDED
@given(
    rows=st.lists(dates, min_size=1, max_size=8, unique=True),
    low=st.one_of(st.none(), dates),
    high=st.one_of(st.none(), dates),
)
def test_mwl_date_ranges(conn: psycopg.Connection, rows: list[str], low, high) -> None:
    assume(low or high)
    column = "scheduled_procedure_step_start_date"
    put_worklist(conn, column, set(rows))
    identifier = mwl_identifier(
        "ScheduledProcedureStepStartDate", f"{low or ''}-{high or ''}", in_sequence=True
    )
    expected = {r for r in rows if (not low or r >= low) and (not high or r <= high)}
    assert mwl_values(conn, column, identifier) == expected
