"""Validation of worklist input (CLI flags, JSON import)."""

from __future__ import annotations

import json

import pytest

from minipacs.worklist.items import ItemError, NewItem, item_from_mapping, parse_import, validate

GOOD = {
    "patient_id": "PAT001",
    "patient_name": "DOE^JOHN",
    "accession": "ACC001",
    "modality": "ct",
    "date": "20240115",
}


def test_a_good_item_is_normalised() -> None:
    item = validate(NewItem(**GOOD, time="0930", sex="f", station_ae=" CT01 "))
    assert (item.modality, item.time, item.sex, item.station_ae) == ("CT", "093000", "F", "CT01")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("date", "20241301", "is not a date YYYYMMDD"),
        ("date", "2024-01-15", "is not a date YYYYMMDD"),
        ("birth_date", "19700230", "is not a date YYYYMMDD"),
        ("time", "2500", "is not a time HHMMSS"),
        ("time", "12:00", "is not a time HHMMSS"),
        ("sex", "X", "is not one of M, F, O"),
        ("accession", "A" * 17, "longer than 16 characters"),
        ("patient_id", "P" * 65, "longer than 64 characters"),
        ("patient_name", "A\\B", "backslash"),
        ("study_uid", "1.2.03", "is not a valid DICOM UID"),
        ("study_uid", "1.2.a", "is not a valid DICOM UID"),
        ("station_ae", "A" * 17, "longer than 16 characters"),
        ("modality", "C-T", "not allowed in a code string"),
        ("step_id", "S" * 17, "longer than 16 characters"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(field: str, value: str, message: str) -> None:
    with pytest.raises(ItemError, match=message):
        validate(NewItem(**(GOOD | {field: value})))


def test_missing_required_value_is_refused() -> None:
    with pytest.raises(ItemError, match="accession is required"):
        item_from_mapping({k: v for k, v in GOOD.items() if k != "accession"})


def test_json_items_must_use_known_names_and_strings() -> None:
    with pytest.raises(ItemError, match="unknown field"):
        item_from_mapping(GOOD | {"patientid": "x"})
    with pytest.raises(ItemError, match="must be a string"):
        item_from_mapping(GOOD | {"date": 20240115})


def test_import_reports_the_line_of_the_first_bad_item() -> None:
    text = "[\n" + json.dumps(GOOD) + ",\n" + json.dumps(GOOD) + ",\n"
    text += '  {"patient_id": "P",\n   "patient_name": "X", "accession": "A",\n'
    text += '   "modality": "CT", "date": "20240230"}\n]\n'
    with pytest.raises(ItemError, match=r"^line 4: item 3: date '20240230'"):
        parse_import(text)


def test_import_parses_every_item_and_refuses_non_lists() -> None:
    assert len(parse_import(json.dumps([GOOD, GOOD], indent=2))) == 2
    assert parse_import("[]") == []
    for bad in ("{}", "", "[", json.dumps([GOOD]) + " x", "[1,]"):
        with pytest.raises(ItemError, match="line"):
            parse_import(bad)
