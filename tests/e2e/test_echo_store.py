"""C-ECHO and C-STORE as a user does them: DCMTK tools, then psql and the volume."""

from __future__ import annotations

from pathlib import Path

from pydicom import dcmread
from pydicom.uid import generate_uid

from tests.helpers import Pacs, dataset_bytes, dcmtk, make_dataset, write_dataset


def test_echoscu_gets_success(pacs: Pacs) -> None:
    result = dcmtk("echoscu", "-v", "-aec", pacs.ae_title, pacs.host, str(pacs.port))
    assert result.returncode == 0
    assert "Received Echo Response (Success)" in result.stdout + result.stderr


def test_wrong_called_ae_is_rejected(pacs: Pacs) -> None:
    for called in ("WRONG_AE", pacs.ae_title.lower()):
        result = dcmtk("echoscu", "-aec", called, pacs.host, str(pacs.port))
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert "Called AE Title Not Recognized" in output


def test_storescu_stores_files_and_indexes_them(pacs: Pacs, tmp_path: Path) -> None:
    study = generate_uid()
    series = generate_uid()
    files = [
        write_dataset(
            make_dataset(
                patient_id="STORE001",
                patient_name="DOE^JANE",
                study_uid=study,
                series_uid=series,
                instance_number=n,
                modality="MR",
            ),
            tmp_path,
        )
        for n in range(1, 6)
    ]
    result = dcmtk("storescu", "-aec", pacs.ae_title, pacs.host, str(pacs.port), *map(str, files))
    assert result.returncode == 0, result.stderr

    for path in files:
        sent = dcmread(path)
        stored = pacs.storage_dir / study / series / f"{sent.SOPInstanceUID}.dcm"
        assert stored.is_file()
        assert dataset_bytes(stored) == dataset_bytes(path)
    assert pacs.rows("SELECT patient_name FROM patients WHERE patient_id = 'STORE001'") == [
        ("DOE^JANE",)
    ]
    assert pacs.rows(
        "SELECT modality, count(*) FROM series s JOIN instances i ON i.series_fk = s.id "
        "WHERE s.series_instance_uid = %s GROUP BY modality",
        (series,),
    ) == [("MR", 5)]
    rows = pacs.rows(
        "SELECT i.file_path, i.file_size, i.calling_ae, i.transfer_syntax_uid FROM instances i "
        "JOIN series s ON s.id = i.series_fk WHERE s.series_instance_uid = %s",
        (series,),
    )
    assert len(rows) == 5
    for file_path, size, calling_ae, syntax in rows:
        assert (pacs.storage_dir / file_path).stat().st_size == size
        assert calling_ae == "STORESCU"
        assert syntax.startswith("1.2.840.10008.1.2")


def test_one_association_mixes_echo_store_and_find_in_small_pdus(
    start_listener, tmp_path: Path
) -> None:
    """C-STOREs are taken off the wire by the listener's own reader, every
    other message by pynetdicom: interleaved on one association, in PDUs of
    4 KiB (so each instance spans several), each gets its own answer."""
    from pydicom.dataset import Dataset
    from pynetdicom import AE
    from pynetdicom.sop_class import (
        CTImageStorage,
        StudyRootQueryRetrieveInformationModelFind,
        Verification,
    )

    pacs = start_listener(PACS_MAX_PDU_SIZE="4096")
    study, series = generate_uid(), generate_uid()
    datasets = [
        make_dataset(
            patient_id="MIXED",
            study_uid=study,
            series_uid=series,
            instance_number=n,
            rows=64,
            columns=64,
        )
        for n in range(3)
    ]
    ae = AE(ae_title="MIXER")
    for sop_class in (CTImageStorage, StudyRootQueryRetrieveInformationModelFind, Verification):
        ae.add_requested_context(sop_class)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
    assert assoc.is_established
    try:
        assert assoc.send_c_echo().Status == 0
        for ds in datasets[:2]:
            assert assoc.send_c_store(ds).Status == 0
        assert assoc.send_c_echo().Status == 0
        assert assoc.send_c_store(datasets[2]).Status == 0
        query = Dataset()
        query.QueryRetrieveLevel = "SERIES"
        query.StudyInstanceUID = study
        query.SeriesInstanceUID = ""
        query.NumberOfSeriesRelatedInstances = ""
        answers = [
            ident
            for status, ident in assoc.send_c_find(
                query, StudyRootQueryRetrieveInformationModelFind
            )
            if status.Status == 0xFF00
        ]
        assert assoc.send_c_echo().Status == 0
    finally:
        assoc.release()
    assert [int(a.NumberOfSeriesRelatedInstances) for a in answers] == [3]
    for ds in datasets:
        stored = dcmread(pacs.stored_file(ds))
        assert stored.SOPInstanceUID == ds.SOPInstanceUID
        assert stored.PixelData == ds.PixelData
