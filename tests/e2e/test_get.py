"""C-GET as a user does it: getscu (and pynetdicom where contexts matter)
receive the instances on the association they opened."""

from __future__ import annotations

import threading
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET

from tests.e2e.destination import archived, store_study
from tests.helpers import Pacs, dataset_bytes, dcmtk, make_dataset, write_dataset


def received_files(out_dir: Path) -> dict[str, Path]:
    return {
        str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p
        for p in out_dir.iterdir()
        if p.is_file()
    }


def store_mixed_study(pacs: Pacs, tmp: Path) -> tuple[str, dict[str, Path]]:
    """A study of uncompressed CT, JPEG 2000 secondary capture and RLE MR,
    stored with each file's own transfer syntax; returns the archived files."""
    study_uid = generate_uid()
    files = []
    for n in range(1, 4):
        ds = make_dataset(patient_id="GETMIX", study_uid=study_uid, instance_number=n)
        files.append(write_dataset(ds, tmp / "sent"))
    for name in ("JPEG2000.dcm", "MR_small_RLE.dcm"):
        ds = dcmread(get_testdata_file(name))
        ds.PatientID = "GETMIX"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        files.append(write_dataset(ds, tmp / "sent"))

    ae = AE(ae_title="MIXSTORE")
    metas = [dcmread(p, stop_before_pixels=True) for p in files]
    for ds in metas:
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
    assert assoc.is_established
    for path in files:
        assert assoc.send_c_store(dcmread(path)).Status == 0
    assoc.release()
    return study_uid, archived(pacs, [str(ds.SOPInstanceUID) for ds in metas])


def get_with_pynetdicom(
    pacs: Pacs,
    identifier: Dataset,
    contexts: list[tuple[str, str]],
    store_delay: float = 0.0,
    cancel_after: int | None = None,
) -> tuple[list[tuple[int, Dataset, Dataset | None]], dict[str, bytes]]:
    """C-GET offering one storage context per (SOP class, transfer syntax)."""
    received: dict[str, bytes] = {}
    lock = threading.Lock()

    def on_store(event) -> int:
        if store_delay:
            threading.Event().wait(store_delay)
        with lock:
            received[str(event.request.AffectedSOPInstanceUID)] = event.encoded_dataset(
                include_meta=False
            )
        return 0

    ae = AE(ae_title="PYGETSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    ae.add_requested_context(GET)
    for sop_class, ts in contexts:
        ae.add_requested_context(sop_class, [ts])
    roles = [build_role(sop, scp_role=True) for sop in {s for s, _ in contexts}]
    assoc = ae.associate(
        pacs.host,
        pacs.port,
        ae_title=pacs.ae_title,
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    assert assoc.is_established
    responses = []
    try:
        for status, ident in assoc.send_c_get(identifier, GET):
            assert "Status" in status
            responses.append((int(status.Status), status, ident))
            if cancel_after is not None and status.Status == 0xFF00:
                if status.NumberOfCompletedSuboperations >= cancel_after:
                    assoc.send_c_cancel(1, assoc.accepted_contexts[0].context_id)
                    cancel_after = None
    finally:
        if assoc.is_established:
            assoc.release()
    return responses, received


def study_identifier(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    return ds


def test_getscu_study(pacs: Pacs, tmp_path: Path) -> None:
    study = store_study(pacs, tmp_path, "GET001")
    before = pacs.settled_counters()
    out = tmp_path / "got"
    out.mkdir()
    result = dcmtk(
        "getscu",
        "-v",
        "-aec",
        pacs.ae_title,
        "-S",
        "-od",
        str(out),
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study.study_uid}",
        pacs.host,
        str(pacs.port),
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Received C-GET Response (Success)" in output, output
    got = received_files(out)
    assert set(got) == set(study.files)
    for uid, path in study.files.items():
        assert dataset_bytes(got[uid]) == dataset_bytes(path)
    pacs.wait_counted(before, c_get_count=1, instances_sent=len(study.files))


def test_get_mixed_compressed_and_uncompressed_study(pacs: Pacs, tmp_path: Path) -> None:
    study_uid, files = store_mixed_study(pacs, tmp_path)
    contexts = []
    for path in files.values():
        meta = dcmread(path, stop_before_pixels=True)
        contexts.append((meta.SOPClassUID, meta.file_meta.TransferSyntaxUID))
    contexts += [(sop, ImplicitVRLittleEndian) for sop, _ in contexts]
    responses, received = get_with_pynetdicom(pacs, study_identifier(study_uid), contexts)
    status, rsp, _ = responses[-1]
    assert status == 0x0000, responses
    assert rsp.NumberOfCompletedSuboperations == len(files)
    assert set(received) == set(files)
    for uid, path in files.items():
        assert received[uid] == dataset_bytes(path), uid
    syntaxes = {
        str(dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID) for p in files.values()
    }
    assert {"1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.5"} <= syntaxes


def test_getscu_prefers_its_compressed_syntax(pacs: Pacs, tmp_path: Path) -> None:
    """getscu +xw asks for JPEG 2000 first: the stored JPEG 2000 instance
    arrives as stored; on the default (uncompressed) proposal it cannot be
    sent without decoding and is reported failed, the others still arrive."""
    study_uid, files = store_mixed_study(pacs, tmp_path)
    j2k = next(
        uid
        for uid, p in files.items()
        if dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID.is_compressed
        and dcmread(p, stop_before_pixels=True).Modality != "MR"
    )
    out = tmp_path / "j2k"
    out.mkdir()
    result = dcmtk(
        "getscu",
        "-v",
        "+xw",
        "-aec",
        pacs.ae_title,
        "-S",
        "-od",
        str(out),
        "-k",
        "QueryRetrieveLevel=IMAGE",
        "-k",
        f"StudyInstanceUID={study_uid}",
        "-k",
        f"SOPInstanceUID={j2k}",
        pacs.host,
        str(pacs.port),
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    got = received_files(out)
    assert set(got) == {j2k}
    assert dataset_bytes(got[j2k]) == dataset_bytes(files[j2k])

    out = tmp_path / "plain"
    out.mkdir()
    result = dcmtk(
        "getscu",
        "-v",
        "-aec",
        pacs.ae_title,
        "-S",
        "-od",
        str(out),
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study_uid}",
        pacs.host,
        str(pacs.port),
        timeout=60,
    )
    output = result.stdout + result.stderr
    # getscu does not read the Failed SOP Instance UID List our Warning
    # carries (PS3.4 C.4.3.1.3.1) and aborts instead of releasing.
    assert "Received C-GET Response (Warning: SubOperationsCompleteOneOrMoreFailures)" in output
    assert "Number of Failed Suboperations    : 2" in output, output
    got = received_files(out)
    assert len(got) == 3 and j2k not in got


def test_get_cancel(pacs: Pacs, tmp_path: Path) -> None:
    study = store_study(pacs, tmp_path, "GETCANCEL", series=1, per_series=20)
    responses, received = get_with_pynetdicom(
        pacs,
        study_identifier(study.study_uid),
        [
            ("1.2.840.10008.5.1.4.1.1.2", ImplicitVRLittleEndian),
            ("1.2.840.10008.5.1.4.1.1.2", ExplicitVRLittleEndian),
        ],
        store_delay=0.05,
        cancel_after=2,
    )
    status, rsp, ident = responses[-1]
    assert status == 0xFE00, responses
    assert rsp.NumberOfRemainingSuboperations > 0
    assert len(received) < 20
    assert rsp.NumberOfCompletedSuboperations == len(received)
