"""Every transfer syntax pydicom ships a file for, stored as received."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_charset_files, get_testdata_file
from pynetdicom import AE, _config

from tests.helpers import Pacs, dataset_bytes, dcmtk

# pydicom test file -> storescu option proposing its transfer syntax
FILES = {
    "CT_small.dcm": "-xe",  # explicit VR little endian
    "MR_small_implicit.dcm": "-xi",  # implicit VR little endian
    "MR_small_bigendian.dcm": "-xb",  # explicit VR big endian
    "image_dfl.dcm": "-xd",  # deflated explicit VR little endian
    "SC_rgb_jpeg_dcmtk.dcm": "-xy",  # JPEG baseline
    "JPEG-lossy.dcm": "-xx",  # JPEG extended
    "SC_rgb_jpeg_gdcm.dcm": "-xs",  # JPEG lossless SV1
    "MR_small_jpeg_ls_lossless.dcm": "-xt",  # JPEG-LS lossless
    "MR_small_jp2klossless.dcm": "-xv",  # JPEG 2000 lossless
    "JPEG2000.dcm": "-xw",  # JPEG 2000
    "MR_small_RLE.dcm": "-xr",  # RLE lossless
}


@pytest.fixture(scope="module")
def archive(start_listener) -> Pacs:
    """pydicom's files share SOP Instance UIDs across transfer syntaxes, so this
    listener replaces duplicates and each test checks right after its store."""
    return start_listener(PACS_DUPLICATE_POLICY="overwrite")


def element_values(ds) -> dict:
    """Every element's value by tag. DCMTK never transmits DataSetTrailingPadding
    and may write encapsulated pixel data as OB where a file said OW, so VRs
    and that one element are left out."""
    return {e.tag: e.value for e in ds if e.keyword != "DataSetTrailingPadding"}


@pytest.mark.parametrize("name", FILES)
def test_storescu_sends_each_transfer_syntax_and_it_is_kept(archive: Pacs, name: str) -> None:
    path = Path(get_testdata_file(name))
    source = dcmread(path)
    syntax = source.file_meta.TransferSyntaxUID
    result = dcmtk(
        "storescu",
        FILES[name],
        "-aec",
        archive.ae_title,
        archive.host,
        str(archive.port),
        str(path),
    )
    assert result.returncode == 0, result.stdout + result.stderr

    stored = dcmread(archive.stored_file(source))
    assert stored.file_meta.TransferSyntaxUID == syntax
    assert element_values(stored) == element_values(source)
    assert stored.PixelData == source.PixelData  # compressed frames untouched
    assert archive.rows(
        "SELECT transfer_syntax_uid FROM instances WHERE sop_instance_uid = %s",
        (source.SOPInstanceUID,),
    ) == [(syntax,)]


@pytest.mark.parametrize("name", FILES)
def test_received_bytes_are_written_verbatim(
    archive: Pacs, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With STORE_SEND_CHUNKED_DATASET pynetdicom sends a file's encoded dataset
    as is: the archive's file must hold those very bytes after its file meta."""
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    path = Path(get_testdata_file(name))
    source = dcmread(path, stop_before_pixels=True)
    ae = AE(ae_title="BYTES_SCU")
    ae.add_requested_context(source.SOPClassUID, source.file_meta.TransferSyntaxUID)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    assoc = ae.associate(archive.host, archive.port, ae_title=archive.ae_title)
    assert assoc.is_established
    status = assoc.send_c_store(path)
    assoc.release()
    assert status.Status == 0x0000
    assert dataset_bytes(archive.stored_file(source)) == dataset_bytes(path)


def charset_files() -> list[Path]:
    files = []
    for name in sorted(get_charset_files("*.dcm")):
        ds = dcmread(name, stop_before_pixels=True)
        if all(k in ds for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")):
            files.append(Path(name))
    return files


@pytest.mark.parametrize("path", charset_files(), ids=lambda p: p.name)
def test_names_are_indexed_decoded_with_the_specific_character_set(
    archive: Pacs, path: Path
) -> None:
    source = dcmread(path)
    result = dcmtk("storescu", "-aec", archive.ae_title, archive.host, str(archive.port), str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = archive.rows(
        "SELECT p.patient_name FROM patients p JOIN studies s ON s.patient_fk = p.id "
        "WHERE s.study_instance_uid = %s",
        (source.StudyInstanceUID,),
    )
    assert rows == [(str(source.PatientName),)]
    assert any(ord(c) > 127 for c in rows[0][0])  # really decoded, not ASCII escapes
