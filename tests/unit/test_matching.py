"""C-FIND matching (PS3.4 C.2.2.2) as pure SQL generation: no database, no network."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from minipacs.index.attributes import PATIENT_ROOT, STUDY_ROOT
from minipacs.index.matching import (
    FindQuery,
    IdentifierError,
    MatchOptions,
    compile_find,
    like_pattern,
    parse_range,
)

OPTIONS = MatchOptions(retrieve_ae_title="MINI_PACS")


def identifier(level: str | None, **keys: object) -> Dataset:
    ds = Dataset()
    if level is not None:
        ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def where(q: FindQuery) -> str:
    return q.where


def compile_(level: str, model: str = STUDY_ROOT, options=OPTIONS, **keys) -> FindQuery:
    return compile_find(identifier(level, **keys), model, options)


# C.2.2.2.1 single value matching


def test_single_value_is_equality_with_the_value_bound() -> None:
    q = compile_("STUDY", AccessionNumber="A'; DROP x;--")  # SH: 16 characters at most
    assert where(q) == "st.accession_number = %s"
    assert q.params == ["A'; DROP x;--"]
    assert "DROP" not in q.sql


def test_single_value_of_non_pn_string_is_case_sensitive() -> None:
    q = compile_("STUDY", StudyDescription="ct chest")
    assert where(q) == "st.study_description = %s"


# C.2.2.2.3 universal matching


@pytest.mark.parametrize("value", ["", "*", "**"])
def test_empty_or_star_is_universal(value: str) -> None:
    q = compile_("STUDY", StudyDescription=value, PatientName=value)
    assert " WHERE " not in q.sql
    assert q.params == []


# C.2.2.2.4 wildcard matching


def test_wildcards_become_like_and_sql_wildcards_are_literal() -> None:
    assert like_pattern("A*B?C") == "A%B_C"
    assert like_pattern("50%_x\\y*") == "50\\%\\_x\\\\y%"
    q = compile_("STUDY", AccessionNumber="A_1%*")
    assert where(q) == "st.accession_number LIKE %s ESCAPE '\\'"
    assert q.params == ["A\\_1\\%%"]


# C.2.2.2.2 list of UID matching


def test_uid_list_matches_any() -> None:
    q = compile_("STUDY", StudyInstanceUID=["1.2.3", "1.2.4"])
    assert where(q) == "st.study_instance_uid = ANY(%s)"
    assert q.params == [["1.2.3", "1.2.4"]]


def test_single_uid_is_equality_and_star_is_not_a_wildcard() -> None:
    q = compile_("SERIES", SeriesInstanceUID="1.2.*")
    assert where(q) == "se.series_instance_uid = %s"
    assert q.params == ["1.2.*"]


# C.2.2.2.5 range matching


@pytest.mark.parametrize(
    ("value", "sql", "params"),
    [
        (
            "20240101-20241231",
            "(st.study_date >= %s AND st.study_date <= %s)",
            ["20240101", "20241231"],
        ),
        ("-20241231", "(st.study_date <= %s)", ["20241231"]),
        ("20240101-", "(st.study_date >= %s)", ["20240101"]),
        ("20240115", "st.study_date = %s", ["20240115"]),
    ],
)
def test_date_ranges(value: str, sql: str, params: list) -> None:
    q = compile_("STUDY", StudyDate=value)
    assert where(q) == sql
    assert q.params == params


def test_time_range_upper_bound_covers_the_whole_span() -> None:
    assert parse_range("08-17", "TM") == ("08", "175959.999999")
    assert parse_range("1015", "TM") == ("1015", "101559.999999")
    assert parse_range("-101500", "TM") == (None, "101500.999999")
    q = compile_("STUDY", StudyTime="0800-1200")
    assert q.params == ["0800", "120059.999999"]


def test_datetime_range() -> None:
    assert parse_range("2024-202406", "DT") == ("2024", "202406" + "31235959.999999")
    assert parse_range("20240101120000-", "DT") == ("20240101120000", None)


def test_combined_date_and_time_range_is_one_datetime_range() -> None:
    q = compile_("STUDY", StudyDate="20240101-20240131", StudyTime="080000-170000")
    assert where(q) == (
        "(st.study_date, st.study_time) >= (%s, %s) AND (st.study_date, st.study_time) <= (%s, %s)"
    )
    assert q.params == ["20240101", "080000", "20240131", "170000.999999"]


def test_open_combined_range() -> None:
    q = compile_("STUDY", StudyDate="20240101-", StudyTime="080000-")
    assert where(q) == "(st.study_date, st.study_time) >= (%s, %s)"


@pytest.mark.parametrize(
    ("keyword", "value"),
    [("StudyDate", "2024"), ("StudyDate", "2024-01-01"), ("StudyTime", "8am"), ("StudyDate", "-")],
)
def test_malformed_values_are_identifier_errors(keyword: str, value: str) -> None:
    with pytest.raises(IdentifierError) as err:
        compile_("STUDY", **{keyword: value})
    assert not err.value.invalid_level
    assert keyword in str(err.value)


# PN: case-insensitive, per component group


def test_pn_matches_any_component_group_case_insensitively() -> None:
    q = compile_("STUDY", PatientName="wang*")
    for n in (1, 2, 3):
        assert f"lower(split_part(p.patient_name, '=', {n})) LIKE lower(%s)" in q.sql
    assert " OR " in where(q)
    assert q.params == ["wang%"] * 3


def test_pn_with_groups_matches_each_group() -> None:
    q = compile_("STUDY", PatientName="Wang*=王*")
    assert where(q) == (
        "(lower(split_part(p.patient_name, '=', 1)) LIKE lower(%s) ESCAPE '\\' AND "
        "lower(split_part(p.patient_name, '=', 2)) LIKE lower(%s) ESCAPE '\\')"
    )
    assert q.params == ["Wang%", "王%"]


def test_pn_exact_value_and_case_sensitive_setting() -> None:
    q = compile_("STUDY", PatientName="DOE^JOHN")
    assert "lower(split_part(p.patient_name, '=', 1)) = lower(%s)" in q.sql
    sensitive = MatchOptions(pn_case_sensitive=True)
    q = compile_("STUDY", options=sensitive, PatientName="DOE*")
    assert "lower(" not in where(q)
    assert "split_part(p.patient_name, '=', 1) LIKE %s" in where(q)


def test_referring_physician_is_pn_too() -> None:
    q = compile_("STUDY", ReferringPhysicianName="welby*")
    assert "lower(split_part(st.referring_physician_name, '=', 1))" in where(q)


# ModalitiesInStudy (C.6.2.1.2)


def test_modalities_in_study_matches_studies_with_any_such_series() -> None:
    q = compile_("STUDY", ModalitiesInStudy=["CT", "MR"])
    assert where(q) == (
        "EXISTS (SELECT 1 FROM series y WHERE y.study_fk = st.id AND y.modality = ANY(%s))"
    )
    assert q.params == [["CT", "MR"]]
    assert "string_agg(DISTINCT y.modality" in q.sql  # and it is returned


def test_multiple_values_of_other_keys_match_any() -> None:
    q = compile_("SERIES", Modality=["CT", "MR"])
    assert where(q) == "(se.modality = %s OR se.modality = %s)"


# Return keys (C.4.1.1.3)


def keywords(q: FindQuery) -> list[str]:
    return [k.keyword for k in q.keys]


def test_unique_keys_of_level_and_above_are_always_returned() -> None:
    q = compile_("STUDY", StudyDate="20240101-20241231")
    assert keywords(q) == ["StudyDate", "QueryRetrieveLevel", "StudyInstanceUID"]
    q = compile_("IMAGE", model=PATIENT_ROOT)
    assert keywords(q) == [  # in tag order, as they are encoded
        "SOPInstanceUID",
        "QueryRetrieveLevel",
        "PatientID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
    ]
    q = compile_("SERIES")  # Study Root has no patient unique key
    assert "PatientID" not in keywords(q)


def test_only_requested_keys_and_constants() -> None:
    q = compile_("STUDY", RetrieveAETitle="", NumberOfStudyRelatedInstances="")
    by_name = {k.keyword: k for k in q.keys}
    assert by_name["RetrieveAETitle"].constant == "MINI_PACS"
    assert by_name["QueryRetrieveLevel"].constant == "STUDY"
    assert by_name["NumberOfStudyRelatedInstances"].index is not None
    assert set(by_name) == {
        "RetrieveAETitle",
        "NumberOfStudyRelatedInstances",
        "QueryRetrieveLevel",
        "StudyInstanceUID",
    }


def test_keys_the_index_does_not_hold_come_back_empty_and_flagged() -> None:
    q = compile_("STUDY", PatientComments="", OtherPatientIDs="X")
    assert q.unsupported == ["OtherPatientIDs", "PatientComments"]
    empty = [k for k in q.keys if k.keyword in q.unsupported]
    assert all(k.index is None and k.constant is None for k in empty)


# Bad identifiers


@pytest.mark.parametrize(
    ("level", "model"),
    [(None, STUDY_ROOT), ("", STUDY_ROOT), ("PATIENT", STUDY_ROOT), ("FRAME", PATIENT_ROOT)],
)
def test_missing_or_invalid_level(level: str | None, model: str) -> None:
    with pytest.raises(IdentifierError) as err:
        compile_find(identifier(level, PatientID=""), model, OPTIONS)
    assert err.value.invalid_level
    assert "QueryRetrieveLevel" in str(err.value)


def test_lower_level_key_with_a_value_is_invalid() -> None:
    with pytest.raises(IdentifierError) as err:
        compile_("PATIENT", model=PATIENT_ROOT, Modality="CT")
    assert err.value.invalid_level
    assert "Modality" in str(err.value)


def test_lower_level_key_without_value_is_answered_empty() -> None:
    q = compile_("STUDY", Modality="")
    assert q.unsupported == ["Modality"]
    assert "se." not in q.sql


def test_upper_level_keys_match_relationally() -> None:
    q = compile_("SERIES", PatientID="PAT001", StudyDate="20240115")
    assert "p.patient_id = %s" in where(q) and "st.study_date = %s" in where(q)


def test_group_length_and_private_elements() -> None:
    ds = identifier("STUDY", StudyDate="")
    ds.add_new(0x00080000, "UL", 42)
    ds.add_new(0x00091010, "LO", "private")
    q = compile_find(ds, STUDY_ROOT, OPTIONS)
    assert [k.tag for k in q.keys if k.index is None and k.constant is None] == [0x00091010]
    assert q.unsupported == ["(0009,1010)"]


def test_unknown_sequence_key_is_returned_empty() -> None:
    ds = identifier("STUDY")
    ds.ReferencedStudySequence = []
    q = compile_find(ds, STUDY_ROOT, OPTIONS)
    assert q.unsupported == ["ReferencedStudySequence"]
    assert any(k.vr == "SQ" for k in q.keys)
