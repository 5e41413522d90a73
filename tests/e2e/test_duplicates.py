"""A SOP instance received twice: PACS_DUPLICATE_POLICY keep / overwrite / reject."""

from __future__ import annotations

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from tests.helpers import Pacs, make_dataset


def send(pacs: Pacs, *datasets) -> list[tuple[int, str]]:
    """C-STORE each dataset on one association; (status, error comment) each."""
    ae = AE(ae_title="DUP_SCU")
    ae.add_requested_context(CTImageStorage)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
    assert assoc.is_established
    results = []
    for ds in datasets:
        rsp = assoc.send_c_store(ds)
        results.append((rsp.Status, rsp.get("ErrorComment", "")))
    assoc.release()
    return results


def instance_rows(pacs: Pacs, sop_uid: str) -> list[tuple]:
    return pacs.rows(
        "SELECT p.patient_name, se.series_instance_uid, i.file_path, i.file_size "
        "FROM instances i JOIN series se ON se.id = i.series_fk "
        "JOIN studies st ON st.id = se.study_fk JOIN patients p ON p.id = st.patient_fk "
        "WHERE i.sop_instance_uid = %s",
        (sop_uid,),
    )


def first_and_second(patient_id: str) -> tuple:
    sop = generate_uid()
    first = make_dataset(patient_id=patient_id, patient_name="FIRST^COPY", sop_uid=sop)
    second = make_dataset(
        patient_id=patient_id,
        patient_name="SECOND^COPY",
        sop_uid=sop,
        study_uid=first.StudyInstanceUID,
        series_uid=first.SeriesInstanceUID,
        rows=16,
        columns=16,
    )
    return first, second


def test_keep_answers_success_and_keeps_the_first_copy(pacs: Pacs) -> None:
    first, second = first_and_second("DUPKEEP")
    assert send(pacs, first, second, second) == [(0, ""), (0, ""), (0, "")]
    rows = instance_rows(pacs, first.SOPInstanceUID)
    assert len(rows) == 1
    assert dcmread(pacs.stored_file(first)).Rows == 8
    assert pacs.rows("SELECT count(*) FROM patients WHERE patient_id = 'DUPKEEP'") == [(1,)]


@pytest.fixture(scope="module")
def overwrite_pacs(start_listener) -> Pacs:
    return start_listener(PACS_DUPLICATE_POLICY="overwrite")


@pytest.fixture(scope="module")
def reject_pacs(start_listener) -> Pacs:
    return start_listener(PACS_DUPLICATE_POLICY="reject")


def test_overwrite_replaces_file_and_row(overwrite_pacs: Pacs) -> None:
    first, second = first_and_second("DUPOVER")
    assert send(overwrite_pacs, first, second) == [(0, ""), (0, "")]
    rows = instance_rows(overwrite_pacs, first.SOPInstanceUID)
    assert len(rows) == 1
    path = overwrite_pacs.stored_file(second)
    assert dcmread(path).Rows == 16
    assert rows[0][3] == path.stat().st_size
    assert rows[0][0] == "SECOND^COPY"


def test_overwrite_moving_to_another_series_leaves_no_stale_file(overwrite_pacs: Pacs) -> None:
    first = make_dataset(patient_id="DUPMOVE")
    moved = make_dataset(patient_id="DUPMOVE", sop_uid=first.SOPInstanceUID)
    assert send(overwrite_pacs, first, moved) == [(0, ""), (0, "")]
    assert not overwrite_pacs.stored_file(first).exists()
    assert overwrite_pacs.stored_file(moved).exists()
    rows = instance_rows(overwrite_pacs, first.SOPInstanceUID)
    assert [r[1] for r in rows] == [moved.SeriesInstanceUID]
    assert "re-sent" in overwrite_pacs.process.log()  # the warning names the move


def test_reject_answers_failure_and_keeps_the_first(reject_pacs: Pacs) -> None:
    first, second = first_and_second("DUPREJ")
    (ok, _), (status, comment) = send(reject_pacs, first, second)
    assert ok == 0
    assert status == 0xC003
    assert "already archived" in comment
    assert dcmread(reject_pacs.stored_file(first)).Rows == 8
    assert len(instance_rows(reject_pacs, first.SOPInstanceUID)) == 1
