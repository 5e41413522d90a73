"""Modality Worklist C-FIND as a modality or a user does it: DCMTK's
`findscu -W`, including the seed README's commands verbatim."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import (
    ModalityPerformedProcedureStep,
    ModalityWorklistInformationFind,
    Verification,
)

from tests.e2e.worklist_tools import add_item, findscu_w, parse_verbose
from tests.helpers import Pacs, dcmtk

MODALITY = "(0008,0060)"
PATIENT_NAME = "(0010,0010)"
PATIENT_ID = "(0010,0020)"
START_DATE = "(0040,0002)"


@pytest.fixture(scope="module")
def items(pacs: Pacs) -> dict[str, dict[str, str]]:
    """Three scheduled steps unique to this module (patient ids end in a tag)."""
    tag = uuid.uuid4().hex[:6].upper()
    wanted = {
        "ct": dict(
            patient_id=f"WLCT{tag}",
            patient_name=f"CT{tag}^JOHN",
            accession=f"A{tag}1",
            modality="CT",
            station_ae="CT01",
            date="20240115",
            time="093000",
            description="CT CHEST",
        ),
        "mr": dict(
            patient_id=f"WLMR{tag}",
            patient_name=f"Mr{tag}^Anna",
            accession=f"A{tag}2",
            modality="MR",
            station_ae="MR01",
            date="20240116",
            time="140000",
        ),
        "ct2": dict(
            patient_id=f"WLCU{tag}",
            patient_name=f"CU{tag}^PAUL",
            accession=f"A{tag}3",
            modality="CT",
            station_ae="CT02",
            date="20240301",
        ),
    }
    for item in wanted.values():
        item["id"] = str(add_item(pacs, **item))
    return wanted | {"tag": {"tag": tag}}


def seed_findscu(pacs: Pacs, *keys: str) -> list[dict[str, str]]:
    """A seed README command: `findscu -v -aec MINI_PACS -W -k ... localhost PORT`."""
    args = ["-v", "-aec", pacs.ae_title, "-W"]
    for key in keys:
        args += ["-k", key]
    result = dcmtk("findscu", *args, "localhost", str(pacs.port), check=True)
    output = result.stdout + result.stderr
    assert "Received Final Find Response (Success)" in output, output
    return parse_verbose(output)


def test_seed_query_all_scheduled_procedures(pacs: Pacs, items: dict) -> None:
    responses = seed_findscu(
        pacs,
        "ScheduledProcedureStepStartDate=",
        "Modality=",
        "PatientName=",
        "PatientID=",
    )
    by_id = {r.get(PATIENT_ID): r for r in responses}
    for key in ("ct", "mr", "ct2"):
        item = items[key]
        rsp = by_id[item["patient_id"]]
        assert rsp[PATIENT_NAME] == item["patient_name"]
        # Flat keys answered at the top level and inside the step sequence.
        assert rsp[MODALITY] == rsp[">" + MODALITY] == item["modality"]
        assert rsp[START_DATE] == rsp[">" + START_DATE] == item["date"]


def test_seed_query_ct_procedures_only(pacs: Pacs, items: dict) -> None:
    responses = seed_findscu(pacs, "Modality=CT", "PatientName=")
    assert responses
    assert all(r[MODALITY] == "CT" and r[">" + MODALITY] == "CT" for r in responses)
    names = {r[PATIENT_NAME] for r in responses}
    assert {items["ct"]["patient_name"], items["ct2"]["patient_name"]} <= names
    assert items["mr"]["patient_name"] not in names


def test_sequence_form_with_modality_station_date_range_and_status(
    pacs: Pacs, items: dict, tmp_path: Path
) -> None:
    tag = items["tag"]["tag"]
    sps = "ScheduledProcedureStepSequence[0]."

    def query(**sps_keys: str) -> list:
        keys = [f"PatientID=*{tag}", "AccessionNumber=", "PatientName="]
        keys += [f"{sps}{k}={v}" for k, v in sps_keys.items()]
        return findscu_w(pacs, tmp_path, *keys)

    found = query(
        Modality="CT",
        ScheduledStationAETitle="CT01",
        ScheduledProcedureStepStartDate="20240101-20240131",
        ScheduledProcedureStepStatus="SCHEDULED",
        ScheduledProcedureStepStartTime="",
        ScheduledProcedureStepDescription="",
    )
    assert len(found) == 1
    rsp = found[0]
    assert rsp.AccessionNumber == items["ct"]["accession"]
    assert rsp.PatientName == items["ct"]["patient_name"]
    step = rsp.ScheduledProcedureStepSequence[0]
    assert step.Modality == "CT" and step.ScheduledStationAETitle == "CT01"
    assert step.ScheduledProcedureStepStartDate == "20240115"
    assert step.ScheduledProcedureStepStartTime == "093000"
    assert step.ScheduledProcedureStepStatus == "SCHEDULED"
    assert step.ScheduledProcedureStepDescription == "CT CHEST"
    # Sequence keys stay inside the sequence.
    assert "Modality" not in rsp and "ScheduledStationAETitle" not in rsp

    assert {d.AccessionNumber for d in query(Modality="CT")} == {
        items["ct"]["accession"],
        items["ct2"]["accession"],
    }
    assert [d.AccessionNumber for d in query(ScheduledProcedureStepStartDate="20240201-")] == [
        items["ct2"]["accession"]
    ]
    assert [d.AccessionNumber for d in query(ScheduledProcedureStepStartDate="-20240115")] == [
        items["ct"]["accession"]
    ]
    assert [d.AccessionNumber for d in query(ScheduledStationAETitle="MR*")] == [
        items["mr"]["accession"]
    ]
    assert [d.AccessionNumber for d in query(ScheduledProcedureStepStartTime="1300-1500")] == [
        items["mr"]["accession"]
    ]
    assert query(Modality="CT", ScheduledStationAETitle="MR01") == []
    assert query(ScheduledProcedureStepStatus="COMPLETED") == []


def test_patient_name_wildcards_are_case_insensitive(
    pacs: Pacs, items: dict, tmp_path: Path
) -> None:
    tag = items["tag"]["tag"]
    found = findscu_w(pacs, tmp_path, f"PatientName=mr{tag.lower()}*", "PatientID=")
    assert [d.PatientID for d in found] == [items["mr"]["patient_id"]]
    found = findscu_w(pacs, tmp_path, f"PatientName=?u{tag}^PAUL", "PatientID=")
    assert [d.PatientID for d in found] == [items["ct2"]["patient_id"]]
    # LIKE's own wildcards are plain characters in DICOM.
    assert findscu_w(pacs, tmp_path, f"PatientName=%{tag}%", "PatientID=") == []
    assert findscu_w(pacs, tmp_path, "PatientID=WLC_" + tag) == []
    found = findscu_w(pacs, tmp_path, f"AccessionNumber={items['ct']['accession']}", "PatientID=")
    assert [d.PatientID for d in found] == [items["ct"]["patient_id"]]


def test_malformed_date_is_refused_and_counted(pacs: Pacs) -> None:
    before = pacs.settled_counters()
    result = dcmtk(
        "findscu",
        "-v",
        "-aec",
        pacs.ae_title,
        "-W",
        "-k",
        "ScheduledProcedureStepStartDate=2024-01",
        pacs.host,
        str(pacs.port),
    )
    # 0xA900, which DCMTK names after the dataset rather than the identifier.
    assert "Final Find Response (Error: DataSetDoesNotMatchSOPClass)" in result.stderr
    pacs.wait_counted(before, mwl_count=1)


def test_disabled_worklist_and_mpps_are_not_accepted(
    start_listener: Callable[..., Pacs],
) -> None:
    pacs = start_listener(PACS_ENABLE_WORKLIST="false", PACS_ENABLE_MPPS="false")
    result = dcmtk(
        "findscu", "-aec", pacs.ae_title, "-W", "-k", "PatientName=", pacs.host, str(pacs.port)
    )
    assert result.returncode != 0
    assert "No Acceptable Presentation Contexts" in result.stdout + result.stderr

    ae = AE(ae_title="MODALITY")
    for sop_class in (
        ModalityWorklistInformationFind,
        ModalityPerformedProcedureStep,
        Verification,
    ):
        ae.add_requested_context(sop_class)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
    assert assoc.is_established
    try:
        accepted = {cx.abstract_syntax for cx in assoc.accepted_contexts}
        assert accepted == {Verification}
    finally:
        assoc.release()
