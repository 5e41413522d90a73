"""MPPS as a modality does it (pynetdicom: DCMTK has no MPPS tool), with the
linked worklist step's status checked through MWL (findscu -W) and psql."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
from pynetdicom.sop_class import ModalityPerformedProcedureStep as MPPS

from tests.e2e.worklist_tools import add_item, findscu_w, modality
from tests.helpers import Pacs

SUCCESS = 0x0000
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
NO_SUCH_SOP_INSTANCE = 0x0112
MISSING_ATTRIBUTE = 0x0120
INVALID_ATTRIBUTE_VALUE = 0x0106


def schedule(pacs: Pacs) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8].upper()
    item = dict(
        patient_id=f"MP{tag}",
        patient_name=f"MPPS^{tag}",
        accession=f"M{tag}",
        modality="CT",
        station_ae="CT01",
        date="20240115",
        time="100000",
        step_id=f"S{tag}",
        study_uid=generate_uid(),
    )
    item["id"] = str(add_item(pacs, **item))
    return item


def n_create_dataset(item: dict[str, str], **overrides: object) -> Dataset:
    ds = Dataset()
    ref = Dataset()
    ref.StudyInstanceUID = item["study_uid"]
    ref.AccessionNumber = item["accession"]
    ref.ScheduledProcedureStepID = item["step_id"]
    ref.RequestedProcedureID = item["accession"]
    ref.ReferencedStudySequence = Sequence()
    ds.ScheduledStepAttributesSequence = Sequence([ref])
    ds.PatientName = item["patient_name"]
    ds.PatientID = item["patient_id"]
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.PerformedProcedureStepID = "PPS" + item["accession"]
    ds.PerformedStationAETitle = "CT01"
    ds.PerformedStationName = ""
    ds.PerformedLocation = ""
    ds.PerformedProcedureStepStartDate = "20240115"
    ds.PerformedProcedureStepStartTime = "100500"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PerformedProcedureStepDescription = "CT CHEST"
    ds.PerformedProcedureStepEndDate = ""
    ds.PerformedProcedureStepEndTime = ""
    ds.Modality = "CT"
    ds.StudyID = ""
    ds.PerformedSeriesSequence = Sequence()
    for keyword, value in overrides.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def final_modification(status: str, series: bool = True) -> Dataset:
    mod = Dataset()
    mod.PerformedProcedureStepStatus = status
    mod.PerformedProcedureStepEndDate = "20240115"
    mod.PerformedProcedureStepEndTime = "102000"
    item = Dataset()
    item.SeriesInstanceUID = generate_uid()
    item.ProtocolName = "CHEST"
    item.PerformingPhysicianName = ""
    item.OperatorsName = ""
    item.SeriesDescription = "AXIAL"
    item.RetrieveAETitle = ""
    item.ReferencedImageSequence = Sequence()
    mod.PerformedSeriesSequence = Sequence([item] if series else [])
    return mod


def mwl_status(pacs: Pacs, item: dict[str, str], out_dir: Path) -> str:
    """The step's status as a modality sees it through MWL."""
    found = findscu_w(
        pacs,
        out_dir,
        f"AccessionNumber={item['accession']}",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus=",
    )
    assert len(found) == 1
    return str(found[0].ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus)


def psql_status(pacs: Pacs, item: dict[str, str]) -> str:
    rows = pacs.rows(
        "SELECT scheduled_procedure_step_status FROM worklist WHERE id = %s", (int(item["id"]),)
    )
    return rows[0][0]


def test_full_cycle_in_progress_then_completed(pacs: Pacs, tmp_path: Path) -> None:
    item = schedule(pacs)
    assert mwl_status(pacs, item, tmp_path) == psql_status(pacs, item) == "SCHEDULED"
    before = pacs.settled_counters()
    uid = generate_uid()

    with modality(pacs) as assoc:
        status, _ = assoc.send_n_create(n_create_dataset(item), MPPS, uid)
        assert status.Status == SUCCESS
        assert mwl_status(pacs, item, tmp_path) == psql_status(pacs, item) == "IN PROGRESS"
        assert pacs.rows(
            "SELECT performed_procedure_step_status, worklist_fk, accession_number, calling_ae "
            "FROM mpps WHERE sop_instance_uid = %s",
            (uid,),
        ) == [("IN PROGRESS", int(item["id"]), item["accession"], "MODALITY")]

        status, _ = assoc.send_n_set(final_modification("COMPLETED"), MPPS, uid)
        assert status.Status == SUCCESS

    assert mwl_status(pacs, item, tmp_path) == psql_status(pacs, item) == "COMPLETED"
    rows = pacs.rows(
        "SELECT performed_procedure_step_status, performed_procedure_step_end_time, "
        "dataset -> '00400340' ->> 'vr', dataset -> '00100020' -> 'Value' ->> 0 "
        "FROM mpps WHERE sop_instance_uid = %s",
        (uid,),
    )
    assert rows == [("COMPLETED", "102000", "SQ", item["patient_id"])]
    listing = pacs.minipacs("mpps", "list")
    assert listing.returncode == 0
    line = next(ln for ln in listing.stdout.splitlines() if uid in ln)
    assert "COMPLETED" in line and item["accession"] in line
    pacs.wait_counted(before, n_create_count=1, n_set_count=1)


def test_discontinued_step(pacs: Pacs, tmp_path: Path) -> None:
    item = schedule(pacs)
    uid = generate_uid()
    with modality(pacs) as assoc:
        assert assoc.send_n_create(n_create_dataset(item), MPPS, uid)[0].Status == SUCCESS
        mod = final_modification("DISCONTINUED", series=False)
        assert assoc.send_n_set(mod, MPPS, uid)[0].Status == SUCCESS
    assert mwl_status(pacs, item, tmp_path) == psql_status(pacs, item) == "DISCONTINUED"
    assert pacs.rows(
        "SELECT performed_procedure_step_status FROM mpps WHERE sop_instance_uid = %s", (uid,)
    ) == [("DISCONTINUED",)]


def test_unscheduled_step_and_generated_instance_uid(pacs: Pacs) -> None:
    item = schedule(pacs)
    unscheduled = dict(item, accession="", step_id="", study_uid=generate_uid())
    ds = n_create_dataset(unscheduled, PerformedProcedureStepID="UNSCHED" + item["accession"])
    with modality(pacs) as assoc:
        status, _ = assoc.send_n_create(ds, MPPS, None)
    assert status.Status == SUCCESS
    rows = pacs.rows(
        "SELECT sop_instance_uid, worklist_fk FROM mpps WHERE performed_procedure_step_id = %s",
        ("UNSCHED" + item["accession"],),
    )
    assert len(rows) == 1 and rows[0][0].startswith("1.2.") and rows[0][1] is None
    assert psql_status(pacs, item) == "SCHEDULED"


@pytest.mark.parametrize(
    ("missing", "tags"),
    [
        (("Modality",), ["00080060"]),
        (("PerformedProcedureStepStartDate", "PerformedStationAETitle"), ["00400241", "00400244"]),
    ],
)
def test_n_create_missing_attributes_0120(
    pacs: Pacs, missing: tuple[str, ...], tags: list[str]
) -> None:
    item = schedule(pacs)
    uid = generate_uid()
    ds = n_create_dataset(item, **dict.fromkeys(missing))
    with modality(pacs) as assoc:
        status, _ = assoc.send_n_create(ds, MPPS, uid)
    assert status.Status == MISSING_ATTRIBUTE
    assert status.ErrorComment.split() == ["missing", *tags]
    assert pacs.rows("SELECT 1 FROM mpps WHERE sop_instance_uid = %s", (uid,)) == []
    assert psql_status(pacs, item) == "SCHEDULED"


def test_n_create_errors(pacs: Pacs) -> None:
    item = schedule(pacs)
    uid = generate_uid()
    with modality(pacs) as assoc:
        bad = n_create_dataset(item, PerformedProcedureStepStatus="COMPLETED")
        status, _ = assoc.send_n_create(bad, MPPS, uid)
        assert status.Status == INVALID_ATTRIBUTE_VALUE
        assert "IN PROGRESS" in status.ErrorComment
        assert assoc.send_n_create(n_create_dataset(item), MPPS, uid)[0].Status == SUCCESS
        status, _ = assoc.send_n_create(n_create_dataset(item), MPPS, uid)
        assert status.Status == DUPLICATE_SOP_INSTANCE
    assert pacs.rows("SELECT count(*) FROM mpps WHERE sop_instance_uid = %s", (uid,)) == [(1,)]


def test_n_set_errors(pacs: Pacs, tmp_path: Path) -> None:
    item = schedule(pacs)
    uid = generate_uid()
    with modality(pacs) as assoc:
        status, _ = assoc.send_n_set(final_modification("COMPLETED"), MPPS, generate_uid())
        assert status.Status == NO_SUCH_SOP_INSTANCE

        assert assoc.send_n_create(n_create_dataset(item), MPPS, uid)[0].Status == SUCCESS
        wrong = Dataset()
        wrong.PerformedProcedureStepStatus = "SCHEDULED"
        assert assoc.send_n_set(wrong, MPPS, uid)[0].Status == INVALID_ATTRIBUTE_VALUE

        status, _ = assoc.send_n_set(final_modification("COMPLETED", series=False), MPPS, uid)
        assert status.Status == MISSING_ATTRIBUTE
        # (0000,1005) AT, one value: pydicom gives the tag itself, not a list.
        assert status["AttributeIdentifierList"].VM == 1
        assert int(status.AttributeIdentifierList) == 0x00400340
        assert psql_status(pacs, item) == "IN PROGRESS"

        fixed = Dataset()
        fixed.Modality = "MR"
        assert assoc.send_n_set(fixed, MPPS, uid)[0].Status == INVALID_ATTRIBUTE_VALUE

        # An intermediate update while IN PROGRESS is allowed.
        progress = Dataset()
        progress.PerformedProcedureStepDescription = "CT CHEST W/O"
        assert assoc.send_n_set(progress, MPPS, uid)[0].Status == SUCCESS

        assert assoc.send_n_set(final_modification("COMPLETED"), MPPS, uid)[0].Status == SUCCESS
        status, _ = assoc.send_n_set(final_modification("DISCONTINUED"), MPPS, uid)
        assert status.Status == PROCESSING_FAILURE
        assert status.ErrorComment == "Performed Procedure Step Object may no longer be updated"

    assert mwl_status(pacs, item, tmp_path) == psql_status(pacs, item) == "COMPLETED"
    assert pacs.rows(
        "SELECT performed_procedure_step_status, performed_procedure_step_description "
        "FROM mpps WHERE sop_instance_uid = %s",
        (uid,),
    ) == [("COMPLETED", "CT CHEST W/O")]
