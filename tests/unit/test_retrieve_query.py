"""Retrieve resolution (PS3.4 C.4.2.2.1): identifier -> SQL and parameters."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from minipacs.index.retrieve import RetrieveKeyError, retrieve_query

PATIENT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"


def ident(level: str, **keys: object) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def test_patient_level_matches_the_patient_id() -> None:
    query = retrieve_query(ident("PATIENT", PatientID="PAT1"), PATIENT_MOVE)
    assert "p.patient_id = ANY(%s)" in query.sql
    assert query.params == (["PAT1"],)


def test_study_level_accepts_a_uid_list() -> None:
    query = retrieve_query(ident("STUDY", StudyInstanceUID=["1.2.3", "1.2.4"]), STUDY_GET)
    assert query.params == (["1.2.3", "1.2.4"],)
    assert "st.study_instance_uid = ANY(%s)" in query.sql


def test_image_level_applies_the_keys_above() -> None:
    query = retrieve_query(
        ident(
            "IMAGE",
            StudyInstanceUID="1.2.3",
            SeriesInstanceUID="1.2.3.4",
            SOPInstanceUID=["1.2.3.4.5", "1.2.3.4.6"],
        ),
        STUDY_MOVE,
    )
    assert query.level == "IMAGE"
    assert query.params == (["1.2.3"], ["1.2.3.4"], ["1.2.3.4.5", "1.2.3.4.6"])
    assert query.sql.count("ANY(%s)") == 3


def test_patient_root_study_level_without_patient_id() -> None:
    query = retrieve_query(ident("STUDY", StudyInstanceUID="1.2.3"), PATIENT_MOVE)
    assert query.params == (["1.2.3"],)


@pytest.mark.parametrize(
    ("identifier", "model", "message"),
    [
        (ident("PATIENT", PatientID="P"), STUDY_MOVE, "not valid"),
        (ident("WHATEVER"), STUDY_MOVE, "not valid"),
        (ident("STUDY"), STUDY_MOVE, "required"),
        (ident("STUDY", StudyInstanceUID=""), STUDY_MOVE, "required"),
        (ident("SERIES", StudyInstanceUID="1.2"), STUDY_MOVE, "SeriesInstanceUID is required"),
        (ident("STUDY", StudyInstanceUID="1.2.*"), STUDY_MOVE, "wildcards"),
        (ident("STUDY", StudyInstanceUID="1.02.3"), STUDY_MOVE, "not a valid UID"),
        (ident("PATIENT", PatientID="DOE*"), PATIENT_MOVE, "wildcards"),
        (ident("STUDY", StudyInstanceUID="1.2"), "1.2.840.10008.5.1.4.1.2.1.1", "model"),
    ],
)
def test_bad_identifiers(identifier: Dataset, model: str, message: str) -> None:
    with pytest.raises(RetrieveKeyError, match=message):
        retrieve_query(identifier, model)


def test_values_are_never_in_the_sql() -> None:
    query = retrieve_query(ident("PATIENT", PatientID="x'; DROP TABLE patients; --"), PATIENT_MOVE)
    assert "DROP" not in query.sql
