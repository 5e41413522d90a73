"""What the index keeps of a received instance, read from its header."""

from __future__ import annotations

import functools
import re
import struct
from dataclasses import dataclass
from io import BytesIO

from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.multival import MultiValue
from pydicom.tag import Tag
from pydicom.uid import UID

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
_TAGS = dict(zip(HEADER_KEYWORDS, HEADER_TAGS, strict=True))
_VRS = {keyword: dictionary_VR(tag) for keyword, tag in _TAGS.items()}

# Where the raw bytes are decoded directly: the character sets whose every
# value decodes in one piece (no code extension), as pydicom would decode them.
_CODECS = {"": "latin_1", "ISO_IR 100": "latin_1", "ISO_IR 192": "utf_8"}
_CHARSET_VRS = {"SH", "LO", "ST", "LT", "UT", "UC", "PN"}  # the others are always ASCII
_PLAIN_IS = re.compile(r" *[+-]?[0-9]+ *")
_PIXEL_DATA_TAGS = frozenset({0x7FE00010, 0x7FE00009, 0x7FE00008})  # as stop_before_pixels
_META_GROUP_LENGTH = b"DICM\x02\x00\x00\x00UL\x04\x00"


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


def read_header(part10: bytes, transfer_syntax_uid: str | None = None) -> Dataset:
    """Parse the attributes the index needs from a Part 10 byte string,
    stopping before the pixel data (which is never decoded).

    Given the transfer syntax (a C-STORE's), a dataset that is neither
    deflated nor big endian is read straight after the file meta: dcmread
    would parse again the file meta we have just built.
    """
    try:
        implicit = _plain_syntax(transfer_syntax_uid) if transfer_syntax_uid else None
        if implicit is None or part10[128:140] != _META_GROUP_LENGTH:
            return dcmread(BytesIO(part10), stop_before_pixels=True, specific_tags=HEADER_TAGS)
        fp = BytesIO(part10)  # shares the bytes, no copy
        fp.seek(144 + struct.unpack_from("<I", part10, 140)[0])
        return read_dataset(
            fp,
            implicit,
            True,
            stop_when=_at_pixel_data,
            specific_tags=HEADER_TAGS,
        )
    except Exception as exc:
        # The bytes come from the wire: pydicom raises a zoo of exceptions on
        # malformed input (NotImplementedError for an unknown VR, zlib.error
        # for a broken deflated stream, struct.error, IndexError, ...), all of
        # which mean the same to us. Found by tests/integration/test_fuzz_store.py.
        raise UnreadableDataset(f"cannot parse dataset: {type(exc).__name__}: {exc}") from exc


@functools.lru_cache(maxsize=64)
def _plain_syntax(transfer_syntax_uid: str) -> bool | None:
    """is_implicit_VR of a transfer syntax that is neither deflated nor big
    endian; None for those and for unknown ones."""
    syntax = UID(transfer_syntax_uid)
    if not syntax.is_transfer_syntax or syntax.is_deflated or not syntax.is_little_endian:
        return None
    return syntax.is_implicit_VR


def _at_pixel_data(tag: int, vr: str | None, length: int) -> bool:
    return tag in _PIXEL_DATA_TAGS


def record_from_dataset(ds: Dataset) -> InstanceRecord:
    """Build the index record; raises InvalidUID for a missing or malformed
    Study, Series, SOP Instance or SOP Class UID, UnreadableDataset when a
    value cannot be decoded."""
    header = _Header(ds)
    try:
        return InstanceRecord(
            patient_id=header.text("PatientID") or "",
            patient_name=header.text("PatientName"),
            patient_birth_date=header.text("PatientBirthDate"),
            patient_sex=header.text("PatientSex"),
            study_instance_uid=header.uid("StudyInstanceUID"),
            study_date=header.text("StudyDate"),
            study_time=header.text("StudyTime"),
            accession_number=header.text("AccessionNumber"),
            study_description=header.text("StudyDescription"),
            referring_physician_name=header.text("ReferringPhysicianName"),
            study_id=header.text("StudyID"),
            series_instance_uid=header.uid("SeriesInstanceUID"),
            modality=header.text("Modality"),
            series_number=header.integer("SeriesNumber"),
            series_description=header.text("SeriesDescription"),
            body_part_examined=header.text("BodyPartExamined"),
            sop_instance_uid=header.uid("SOPInstanceUID"),
            sop_class_uid=header.uid("SOPClassUID"),
            instance_number=header.integer("InstanceNumber"),
        )
    except InvalidUID:
        raise
    except Exception as exc:
        # Values are decoded lazily, on first access: the same zoo as above.
        raise UnreadableDataset(
            f"cannot decode header attributes: {type(exc).__name__}: {exc}"
        ) from exc


_PYDICOM = object()  # "let pydicom convert this value"


class _Header:
    """A header's values as the index keeps them.

    A value pydicom would convert to the same text is decoded straight from
    its raw bytes: one value (no backslash), a character set without code
    extensions, the VR of the data dictionary, and for a name a single
    component group. pydicom's lazy conversion of these twenty attributes
    takes longer than reading the whole header; everything else still goes
    through it (tests/unit/test_header_values.py holds the two equal).
    """

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self.codec = _codec(ds)

    def text(self, keyword: str) -> str | None:
        """Unicode text, NULs and surrounding spaces removed; None when
        absent or empty. Multi-valued → backslash-joined."""
        value = self._decoded(keyword)
        if value is _PYDICOM:
            return _text(self.ds, keyword)
        return value and value.replace("\x00", "").strip(" ") or None

    def uid(self, keyword: str) -> str:
        """The UID, or InvalidUID naming the attribute."""
        value = self._decoded(keyword)
        if value is _PYDICOM:
            return check_uid(self.ds.get(keyword), keyword)
        return check_uid(value and value.rstrip("\x00 ").strip(), keyword)  # as pydicom's UID

    def integer(self, keyword: str) -> int | None:
        """An IS value as int; None when absent, empty, or not a 32-bit integer."""
        value = self._decoded(keyword)
        if value is _PYDICOM or (value and not _PLAIN_IS.fullmatch(value)):
            return _integer(self.ds, keyword)
        return _in_int32(int(value)) if value and value.strip(" ") else None

    def _decoded(self, keyword: str) -> str | None | object:
        element = self.ds.get_item(_TAGS[keyword])
        if element is None:
            return None
        vr = _VRS[keyword]
        raw = element.value if isinstance(element, RawDataElement) else None
        if (
            self.codec is None
            or not isinstance(raw, bytes)
            or element.VR not in (None, vr)
            or b"\\" in raw
            or b"\x1b" in raw
            or (vr == "PN" and b"=" in raw)
        ):
            return _PYDICOM
        try:
            return raw.decode(self.codec if vr in _CHARSET_VRS else "latin_1")
        except UnicodeDecodeError:
            return _PYDICOM


def _codec(ds: Dataset) -> str | None:
    """The codec for the dataset's Specific Character Set when it is one that
    _Header decodes itself, else None."""
    element = ds.get_item(_TAGS["SpecificCharacterSet"])
    if element is None:
        return _CODECS[""]
    raw = element.value if isinstance(element, RawDataElement) else None
    if not isinstance(raw, bytes):
        return None
    return _CODECS.get(raw.decode("latin_1").rstrip("\x00 "))


def _text(ds: Dataset, keyword: str) -> str | None:
    """_Header.text through pydicom's conversion."""
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
    """_Header.integer through pydicom's conversion."""
    text = _text(ds, keyword)
    if text is None:
        return None
    try:
        value = int(float(text)) if "." in text else int(text)
    except ValueError:
        return None
    return _in_int32(value)


def _in_int32(value: int) -> int | None:
    return value if -(2**31) <= value < 2**31 else None
