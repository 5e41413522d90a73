"""What the index keeps of a received instance, read from its header."""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import Tag

from minipacs.uids import InvalidUID, check_uid

HEADER_KEYWORDS = [
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "Modality",
    "ReferringPhysicianName",
    "StudyDescription",
    "SeriesDescription",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "BodyPartExamined",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "StudyID",
    "SeriesNumber",
    "InstanceNumber",
]
HEADER_TAGS = [Tag(keyword) for keyword in HEADER_KEYWORDS]  # dcmread converts names per call


class UnreadableDataset(ValueError):
    """The received bytes are not a DICOM dataset pydicom can read."""


@dataclass(frozen=True)
class InstanceRecord:
    patient_id: str
    patient_name: str | None
    patient_birth_date: str | None
    patient_sex: str | None
    study_instance_uid: str
    study_date: str | None
    study_time: str | None
    accession_number: str | None
    study_description: str | None
    referring_physician_name: str | None
    study_id: str | None
    series_instance_uid: str
    modality: str | None
    series_number: int | None
    series_description: str | None
    body_part_examined: str | None
    sop_instance_uid: str
    sop_class_uid: str
    instance_number: int | None


def read_header(part10: bytes) -> Dataset:
    """Parse the attributes the index needs from a Part 10 byte string,
    stopping before the pixel data (which is never decoded)."""
    try:
        return dcmread(BytesIO(part10), stop_before_pixels=True, specific_tags=HEADER_TAGS)
    except Exception as exc:
        # The bytes come from the wire: pydicom raises a zoo of exceptions on
        # malformed input (NotImplementedError for an unknown VR, zlib.error
        # for a broken deflated stream, struct.error, IndexError, ...), all of
        # which mean the same to us. Found by tests/integration/test_fuzz_store.py.
        raise UnreadableDataset(f"cannot parse dataset: {type(exc).__name__}: {exc}") from exc


def record_from_dataset(ds: Dataset) -> InstanceRecord:
    """Build the index record; raises InvalidUID for a missing or malformed
    Study, Series, SOP Instance or SOP Class UID, UnreadableDataset when a
    value cannot be decoded."""
    try:
        return InstanceRecord(
            patient_id=_text(ds, "PatientID") or "",
            patient_name=_text(ds, "PatientName"),
            patient_birth_date=_text(ds, "PatientBirthDate"),
            patient_sex=_text(ds, "PatientSex"),
            study_instance_uid=check_uid(ds.get("StudyInstanceUID"), "StudyInstanceUID"),
            study_date=_text(ds, "StudyDate"),
            study_time=_text(ds, "StudyTime"),
            accession_number=_text(ds, "AccessionNumber"),
            study_description=_text(ds, "StudyDescription"),
            referring_physician_name=_text(ds, "ReferringPhysicianName"),
            study_id=_text(ds, "StudyID"),
            series_instance_uid=check_uid(ds.get("SeriesInstanceUID"), "SeriesInstanceUID"),
            modality=_text(ds, "Modality"),
            series_number=_integer(ds, "SeriesNumber"),
            series_description=_text(ds, "SeriesDescription"),
            body_part_examined=_text(ds, "BodyPartExamined"),
            sop_instance_uid=check_uid(ds.get("SOPInstanceUID"), "SOPInstanceUID"),
            sop_class_uid=check_uid(ds.get("SOPClassUID"), "SOPClassUID"),
            instance_number=_integer(ds, "InstanceNumber"),
        )
    except InvalidUID:
        raise
    except Exception as exc:
        # Values are decoded lazily, on first access: the same zoo as above.
        raise UnreadableDataset(
            f"cannot decode header attributes: {type(exc).__name__}: {exc}"
        ) from exc


def _text(ds: Dataset, keyword: str) -> str | None:
    """The value as Unicode text (decoded with the dataset's Specific Character
    Set by pydicom), None when absent or empty. Multi-valued → backslash-joined."""
    value = ds.get(keyword)
    if value is None:
        return None
    if isinstance(value, MultiValue | list | tuple):
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value)
    text = text.replace("\x00", "").strip(" ")
    return text or None


def _integer(ds: Dataset, keyword: str) -> int | None:
    """An IS value as int; None when absent, empty, or not a 32-bit integer."""
    text = _text(ds, keyword)
    if text is None:
        return None
    try:
        value = int(float(text)) if "." in text else int(text)
    except ValueError:
        return None
    return value if -(2**31) <= value < 2**31 else None
