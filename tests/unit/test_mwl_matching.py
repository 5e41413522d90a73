"""MWL matching (PS3.4 K.2.2 / C.2.2.2): identifier in, parameterised SQL out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from minipacs.worklist.matching import (
    SPS_KEYS,
    TOP_KEYS,
    QueryError,
    build_query,
    key_condition,
    like_pattern,
    response,
)


def _where(sql: str) -> str:
    return sql.split(" WHERE ", 1)[1].split(" ORDER BY ")[0]


def test_empty_values_and_lone_star_are_universal() -> None:
    ds = Dataset()
    ds.PatientName = ""
    ds.Modality = "*"
    ds.ScheduledProcedureStepStartDate = ""
    sql, params = build_query(ds)
    assert _where(sql) == "TRUE" and params == []


def test_wildcards_become_escaped_like_patterns() -> None:
    assert like_pattern("A%B_C\\D*E?") == "A\\%B\\_C\\\\D%E_"
    sql, params = key_condition(TOP_KEYS["AccessionNumber"], "AC_1*", "AccessionNumber")
    assert sql == "accession_number LIKE %s ESCAPE '\\'" and params == ["AC\\_1%"]


def test_patient_name_is_case_insensitive() -> None:
    assert key_condition(TOP_KEYS["PatientName"], "doe*", "PatientName") == (
        "lower(patient_name) LIKE lower(%s) ESCAPE '\\'",
        ["doe%"],
    )
    assert key_condition(TOP_KEYS["PatientName"], "doe^john", "PatientName") == (
        "lower(patient_name) = lower(%s)",
        ["doe^john"],
    )


def test_date_and_time_ranges() -> None:
    date = SPS_KEYS["ScheduledProcedureStepStartDate"]
    time = SPS_KEYS["ScheduledProcedureStepStartTime"]
    col = date.column
    assert key_condition(date, "20240101-20240131", "d") == (
        f"{col} >= %s AND {col} <= %s",
        ["20240101", "20240131"],
    )
    assert key_condition(date, "20240101-", "d") == (f"{col} >= %s", ["20240101"])
    assert key_condition(date, "-20240131", "d") == (f"{col} <= %s", ["20240131"])
    assert key_condition(date, "20240101", "d") == (f"{col} = %s", ["20240101"])
    # A single time covers the span of its precision.
    assert key_condition(time, "10", "t")[1] == ["100000", "105959.999999"]
    assert key_condition(time, "0900-1000", "t")[1] == ["090000", "100059.999999"]
    for bad in ("2024", "20240101-20240102-20240103", "-", "abc"):
        with pytest.raises(QueryError):
            key_condition(date, bad, "d")


def test_uid_list_matching_and_bad_uids() -> None:
    uid = TOP_KEYS["StudyInstanceUID"]
    assert key_condition(uid, "1.2.3\\1.2.4", "u") == (
        "study_instance_uid = ANY(%s)",
        [["1.2.3", "1.2.4"]],
    )
    with pytest.raises(QueryError):
        key_condition(uid, "1.2.x", "u")


def test_flat_keys_and_sequence_keys_are_both_matched() -> None:
    ds = Dataset()
    ds.Modality = "CT"
    item = Dataset()
    item.ScheduledStationAETitle = "CT01"
    item.ScheduledProcedureStepStatus = "SCHEDULED"
    ds.ScheduledProcedureStepSequence = Sequence([item])
    sql, params = build_query(ds)
    assert _where(sql) == (
        "modality = %s AND scheduled_station_ae_title = %s AND scheduled_procedure_step_status = %s"
    )
    assert params == ["CT", "CT01", "SCHEDULED"]
    assert "%" not in sql.replace("%s", "")


ROW = {
    "patient_name": "DOE^JOHN",
    "patient_id": "PAT001",
    "modality": "CT",
    "scheduled_procedure_step_start_date": "20240115",
    "scheduled_station_ae_title": "CT01",
    "scheduled_procedure_step_status": "SCHEDULED",
    "accession_number": "ACC001",
}


def test_flat_step_keys_are_answered_at_both_places() -> None:
    ds = Dataset()
    ds.ScheduledProcedureStepStartDate = ""
    ds.Modality = ""
    ds.PatientName = ""
    ds.PatientID = ""
    rsp = response(ds, ROW)
    assert (rsp.Modality, rsp.PatientName, rsp.ScheduledProcedureStepStartDate) == (
        "CT",
        "DOE^JOHN",
        "20240115",
    )
    item = rsp.ScheduledProcedureStepSequence[0]
    assert (item.Modality, item.ScheduledProcedureStepStartDate) == ("CT", "20240115")
    assert "ScheduledStationAETitle" not in item


def test_sequence_keys_answered_inside_and_unknown_keys_empty() -> None:
    ds = Dataset()
    ds.AccessionNumber = ""
    ds.ReferencedStudySequence = Sequence()
    ds.InstitutionName = ""
    item = Dataset()
    item.ScheduledStationAETitle = ""
    item.ScheduledProtocolCodeSequence = Sequence()
    ds.ScheduledProcedureStepSequence = Sequence([item])
    rsp = response(ds, ROW)
    assert rsp.AccessionNumber == "ACC001"
    assert not rsp.InstitutionName and len(rsp.ReferencedStudySequence) == 0
    assert "Modality" not in rsp
    out = rsp.ScheduledProcedureStepSequence[0]
    assert out.ScheduledStationAETitle == "CT01"
    assert "Modality" not in out


def test_an_empty_sequence_returns_every_step_attribute() -> None:
    ds = Dataset()
    ds.ScheduledProcedureStepSequence = Sequence()
    out = response(ds, ROW).ScheduledProcedureStepSequence[0]
    assert out.Modality == "CT" and out.ScheduledProcedureStepStatus == "SCHEDULED"


@given(st.text(min_size=1, max_size=20))
def test_wire_values_only_ever_become_parameters(value: str) -> None:
    for keyword, key in {**TOP_KEYS, **SPS_KEYS}.items():
        try:
            condition = key_condition(key, value, keyword)
        except QueryError:
            continue
        if condition is None:
            continue
        c = key.column
        templates = {
            f"{c} = %s",
            f"{c} LIKE %s ESCAPE '\\'",
            f"lower({c}) = lower(%s)",
            f"lower({c}) LIKE lower(%s) ESCAPE '\\'",
            f"{c} = ANY(%s)",
            f"{c} >= %s",
            f"{c} <= %s",
            f"{c} >= %s AND {c} <= %s",
        }
        assert condition[0] in templates
        assert len(condition[1]) == condition[0].count("%s")
