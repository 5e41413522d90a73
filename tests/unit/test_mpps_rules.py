"""MPPS N-CREATE / N-SET rules (PS3.4 F.7.2)."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from minipacs.mpps import rules
from minipacs.status import Status


def create_dataset(**overrides: object) -> Dataset:
    ds = Dataset()
    ref = Dataset()
    ref.StudyInstanceUID = "1.2.3.4"
    ref.AccessionNumber = "ACC001"
    ref.ScheduledProcedureStepID = "SPS1"
    ref.RequestedProcedureID = "RP1"
    ds.ScheduledStepAttributesSequence = Sequence([ref])
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = "PAT001"
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedStationAETitle = "CT01"
    ds.PerformedProcedureStepStartDate = "20240115"
    ds.PerformedProcedureStepStartTime = "093000"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.Modality = "CT"
    for keyword, value in overrides.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def completed(status: str = "COMPLETED", series: bool = True) -> Dataset:
    mod = Dataset()
    mod.PerformedProcedureStepStatus = status
    mod.PerformedProcedureStepEndDate = "20240115"
    mod.PerformedProcedureStepEndTime = "100000"
    item = Dataset()
    item.SeriesInstanceUID = "1.2.3.4.5"
    item.ProtocolName = "CHEST"
    mod.PerformedSeriesSequence = Sequence([item] if series else [])
    return mod


def test_a_complete_create_passes() -> None:
    assert rules.check_create(create_dataset()) is None


def test_missing_type_1_attributes_are_named() -> None:
    problem = rules.check_create(
        create_dataset(Modality=None, PerformedProcedureStepStartDate=None)
    )
    assert problem is not None and problem.status == Status.MISSING_ATTRIBUTE
    assert set(problem.tags) == {0x00080060, 0x00400244}
    assert "00080060" in problem.comment and "00400244" in problem.comment


def test_empty_type_1_and_wrong_status() -> None:
    problem = rules.check_create(create_dataset(PerformedStationAETitle=""))
    assert problem and problem.status == Status.MISSING_ATTRIBUTE_VALUE
    assert problem.tags == (0x00400241,)
    problem = rules.check_create(create_dataset(PerformedProcedureStepStatus="COMPLETED"))
    assert problem and problem.status == Status.INVALID_ATTRIBUTE_VALUE


def test_set_to_completed_needs_end_and_series() -> None:
    stored = create_dataset()
    merged = rules.apply_set(stored, completed())
    assert isinstance(merged, Dataset) and merged.PerformedProcedureStepStatus == "COMPLETED"
    assert merged.PatientID == "PAT001"
    problem = rules.apply_set(stored, completed(series=False))
    assert isinstance(problem, rules.Problem) and problem.status == Status.MISSING_ATTRIBUTE
    assert problem.tags == (0x00400340,)
    mod = completed()
    del mod.PerformedProcedureStepEndTime
    problem = rules.apply_set(stored, mod)
    assert isinstance(problem, rules.Problem) and problem.tags == (0x00400251,)


def test_discontinued_needs_no_series() -> None:
    merged = rules.apply_set(create_dataset(), completed("DISCONTINUED", series=False))
    assert isinstance(merged, Dataset)


def test_status_may_only_become_final_and_fixed_attributes_stay() -> None:
    mod = Dataset()
    mod.PerformedProcedureStepStatus = "SCHEDULED"
    problem = rules.apply_set(create_dataset(), mod)
    assert isinstance(problem, rules.Problem) and problem.status == Status.INVALID_ATTRIBUTE_VALUE
    mod = completed()
    mod.Modality = "MR"
    problem = rules.apply_set(create_dataset(), mod)
    assert isinstance(problem, rules.Problem) and problem.tags == (0x00080060,)
    mod.Modality = "CT"  # resending the same value is harmless
    assert isinstance(rules.apply_set(create_dataset(), mod), Dataset)


def test_links_and_columns_come_from_the_scheduled_step_attributes() -> None:
    ds = create_dataset()
    assert rules.step_refs(ds) == [rules.StepRef("1.2.3.4", "ACC001", "RP1", "SPS1")]
    cols = rules.columns(ds)
    assert cols["accession_number"] == "ACC001"
    assert cols["performed_procedure_step_status"] == "IN PROGRESS"
    assert cols["patient_name"] == "DOE^JOHN"
