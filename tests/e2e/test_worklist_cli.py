"""`minipacs worklist ...` as a user types it: good input stored, bad input
refused with a clear message and a non-zero exit, imports all or nothing."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.helpers import Pacs

BASE = [
    "--patient-id",
    "CLI001",
    "--patient-name",
    "DOE^JOHN",
    "--accession",
    "CLIACC",
    "--modality",
    "CT",
    "--date",
    "20240115",
]


def with_flag(flag: str, value: str) -> list[str]:
    args = list(BASE)
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    return args


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--date", "20240230", "date '20240230' is not a date YYYYMMDD"),
        ("--date", "15/01/2024", "is not a date YYYYMMDD"),
        ("--birth-date", "1970", "birth date '1970' is not a date YYYYMMDD"),
        ("--time", "250000", "time '250000' is not a time HHMMSS"),
        ("--sex", "Q", "sex 'Q' is not one of M, F, O"),
        ("--accession", "X" * 17, "longer than 16 characters"),
        ("--patient-id", "P" * 65, "longer than 64 characters"),
        ("--description", "D" * 65, "longer than 64 characters"),
        ("--station-ae", "STATION_TITLE_TOO_LONG", "longer than 16 characters"),
        ("--study-uid", "1.2.840.abc", "is not a valid DICOM UID"),
        ("--study-uid", "1." + "2" * 70, "is not a valid DICOM UID"),
        ("--patient-name", "DOE\\JOHN", "backslash"),
    ],
)
def test_bad_add_is_refused(pacs: Pacs, flag: str, value: str, message: str) -> None:
    before = pacs.rows("SELECT count(*) FROM worklist")
    result = pacs.minipacs("worklist", "add", *with_flag(flag, value))
    assert result.returncode != 0
    assert message in result.stderr
    assert result.stderr.startswith("minipacs: ") and "Traceback" not in result.stderr
    assert pacs.rows("SELECT count(*) FROM worklist") == before


def test_missing_required_flag_is_refused(pacs: Pacs) -> None:
    result = pacs.minipacs("worklist", "add", *BASE[:-2])
    assert result.returncode != 0
    assert "--date" in result.stderr


def test_add_list_remove(pacs: Pacs) -> None:
    accession = "L" + uuid.uuid4().hex[:10]
    result = pacs.minipacs(
        "worklist",
        "add",
        *with_flag("--accession", accession),
        "--time",
        "0930",
        "--station-ae",
        "CT01",
        "--sex",
        "m",
    )
    assert result.returncode == 0, result.stderr
    item_id = int(result.stdout)
    rows = pacs.rows(
        "SELECT accession_number, requested_procedure_id, scheduled_procedure_step_id, "
        "scheduled_procedure_step_start_time, patient_sex, scheduled_procedure_step_status, "
        "study_instance_uid FROM worklist WHERE id = %s",
        (item_id,),
    )
    accession_number, rp_id, step_id, time, sex, status, study_uid = rows[0]
    assert (accession_number, rp_id, step_id, time, sex, status) == (
        accession,
        accession,
        str(item_id),
        "093000",
        "M",
        "SCHEDULED",
    )
    assert study_uid.count(".") > 3  # generated

    listing = pacs.minipacs("worklist", "list")
    assert listing.returncode == 0
    assert listing.stdout.splitlines()[0].split()[:3] == ["id", "accession", "patient"]
    line = next(ln for ln in listing.stdout.splitlines() if accession in ln)
    assert line.split()[0] == str(item_id)
    for text in ("CLI001 DOE^JOHN", "CT01", "20240115 093000", "SCHEDULED"):
        assert text in line

    assert pacs.minipacs("worklist", "remove", str(item_id)).returncode == 0
    assert pacs.rows("SELECT 1 FROM worklist WHERE id = %s", (item_id,)) == []
    again = pacs.minipacs("worklist", "remove", str(item_id))
    assert again.returncode != 0 and f"no worklist item with id {item_id}" in again.stderr
    bad = pacs.minipacs("worklist", "remove", "abc")
    assert bad.returncode != 0 and "is not a number" in bad.stderr


def _items(tag: str, n: int) -> list[dict[str, str]]:
    return [
        {
            "patient_id": f"IMP{tag}{i}",
            "patient_name": f"IMPORT^{i}",
            "accession": f"I{tag}{i}",
            "modality": "MR",
            "date": "20240201",
            "time": "080000",
            "station_ae": "MR01",
        }
        for i in range(n)
    ]


def test_import_is_all_or_nothing_and_names_the_bad_line(pacs: Pacs, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    items = _items(tag, 3)
    items[2]["sex"] = "Z"
    path = tmp_path / "worklist.json"
    path.write_text(json.dumps(items, indent=2))
    # Item 3 starts on the line after the 2 items of 9 lines each and "[".
    bad_line = 1 + 2 * 9 + 1
    assert path.read_text().splitlines()[bad_line - 1].strip() == "{"

    result = pacs.minipacs("worklist", "import", str(path))
    assert result.returncode != 0
    assert f"line {bad_line}: item 3: sex 'Z' is not one of M, F, O" in result.stderr
    assert "nothing imported" in result.stderr
    assert pacs.rows("SELECT count(*) FROM worklist WHERE patient_id LIKE %s", (f"IMP{tag}%",)) == [
        (0,)
    ]

    del items[2]["sex"]
    path.write_text(json.dumps(items, indent=2))
    result = pacs.minipacs("worklist", "import", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("imported 3 items")
    assert pacs.rows(
        "SELECT accession_number, scheduled_station_ae_title FROM worklist "
        "WHERE patient_id LIKE %s ORDER BY accession_number",
        (f"IMP{tag}%",),
    ) == [(f"I{tag}{i}", "MR01") for i in range(3)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{}", "line 1: the file must hold a JSON list"),
        ('[\n{"patient_id": "X",\n', "line 3: invalid JSON"),
        ('[\n  {"patient_id": "X", "colour": "red"}\n]', "line 2: item 1: unknown field(s) colour"),
        ('[{"patient_id": 7}]', "line 1: item 1: patient_id must be a string"),
    ],
)
def test_import_refuses_malformed_files(
    pacs: Pacs, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = pacs.minipacs("worklist", "import", str(path))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_import_of_missing_file(pacs: Pacs, tmp_path: Path) -> None:
    result = pacs.minipacs("worklist", "import", str(tmp_path / "nope.json"))
    assert result.returncode != 0 and "cannot read" in result.stderr
