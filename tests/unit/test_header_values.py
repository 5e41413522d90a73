"""The index record read the fast way (dataset read after our own file meta,
values decoded from their raw bytes) equals the record pydicom's dcmread and
value conversion give, for awkward values and for pydicom's test files."""

from __future__ import annotations

import struct
from pathlib import Path
from unittest.mock import patch

import pydicom.data
import pytest
from pydicom import dcmread

from minipacs import filemeta
from minipacs.index import record
from minipacs.index.record import (
    InstanceRecord,
    UnreadableDataset,
    read_header,
    record_from_dataset,
)
from minipacs.uids import InvalidUID

EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
CT = "1.2.840.10008.5.1.4.1.1.2"
SOP, STUDY, SERIES = "1.2.3.4.5", "1.2.3.4", "1.2.3.4.1"


def _via_pydicom(part10: bytes) -> InstanceRecord:
    """The record as dcmread and pydicom's lazy conversion make it: every
    value handed to pydicom, none decoded from its raw bytes."""
    with patch.object(record._Header, "_decoded", lambda self, keyword: record._PYDICOM):
        return record_from_dataset(read_header(part10))  # no transfer syntax: dcmread


def _outcome(build) -> object:
    try:
        return build()
    except (InvalidUID, UnreadableDataset) as exc:
        return type(exc)


def _assert_same(part10: bytes, syntax: str) -> InstanceRecord | type:
    fast = _outcome(lambda: record_from_dataset(read_header(part10, syntax)))
    slow = _outcome(lambda: _via_pydicom(part10))
    assert fast == slow
    return fast


def _element(tag: int, vr: str, value: bytes, implicit: bool) -> bytes:
    if len(value) % 2:
        value += b" "
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    if implicit:
        return head + struct.pack("<I", len(value)) + value
    if vr in ("UN", "UT", "UC"):
        return head + vr.encode() + struct.pack("<HI", 0, len(value)) + value
    return head + vr.encode() + struct.pack("<H", len(value)) + value


def _instance(overrides: dict[int, tuple[str, bytes]], implicit: bool = False) -> bytes:
    elements = {
        0x00080016: ("UI", CT.encode()),
        0x00080018: ("UI", SOP.encode()),
        0x00100010: ("PN", b"DOE^JOHN"),
        0x00100020: ("LO", b"PID1"),
        0x0020000D: ("UI", STUDY.encode()),
        0x0020000E: ("UI", SERIES.encode()),
        0x00200011: ("IS", b"3"),
        0x00200013: ("IS", b"12"),
    } | overrides
    body = b"".join(
        _element(tag, vr, value, implicit) for tag, (vr, value) in sorted(elements.items())
    )
    syntax = IMPLICIT if implicit else EXPLICIT
    return filemeta.part10(CT, SOP, syntax) + body


LATIN1 = (0x00080005, ("CS", b"ISO_IR 100"))
UTF8 = (0x00080005, ("CS", b"ISO_IR 192"))
JIS = (0x00080005, ("CS", b"\\ISO 2022 IR 87"))

CASES = {
    "plain": {},
    "padded name": {0x00100010: ("PN", b"DOE^JOHN  ")},
    "NUL-padded name": {0x00100010: ("PN", b"DOE^JOHN\x00")},
    "embedded NUL": {0x00100020: ("LO", b"A\x00B ")},
    "leading spaces": {0x00100020: ("LO", b"  PID")},
    "only spaces": {0x00100020: ("LO", b"    ")},
    "empty": {0x00100020: ("LO", b"")},
    "two values": {0x00081030: ("LO", b"HEAD\\ NECK ")},
    "name groups": {0x00100010: ("PN", b"Yamada^Tarou=Yamada^Tarou=")},
    "trailing carets": {0x00100010: ("PN", b"DOE^^^")},
    "latin-1 name": dict([LATIN1, (0x00100010, ("PN", "Müller^Jürgen".encode("latin-1")))]),
    "utf-8 name": dict([UTF8, (0x00100010, ("PN", "Dupré^Zoë".encode()))]),
    "utf-8 chinese": dict([UTF8, (0x00100010, ("PN", "王^小東".encode()))]),
    "invalid utf-8": dict([UTF8, (0x00100010, ("PN", b"M\xfcller"))]),
    "high bytes, no charset": {0x00100010: ("PN", b"M\xfcller")},
    "ISO 2022": dict([JIS, (0x00100010, ("PN", b"Yamada^Tarou=\x1b$B;3ED\x1b(B"))]),
    "charset padded": {0x00080005: ("CS", b"ISO_IR 192 "), 0x00100010: ("PN", "Jé".encode())},
    "unknown charset": {0x00080005: ("CS", b"ISO_IR 999"), 0x00100010: ("PN", b"DOE")},
    "IS plus": {0x00200013: ("IS", b"+7")},
    "IS spaces": {0x00200013: ("IS", b" 7 ")},
    "IS decimal": {0x00200013: ("IS", b"7.0")},
    "IS not a number": {0x00200013: ("IS", b"seven")},
    "IS too big": {0x00200013: ("IS", b"99999999999")},
    "IS two values": {0x00200013: ("IS", b"1\\2")},
    "IS empty": {0x00200013: ("IS", b"")},
    "name as LO": {0x00100010: ("LO", b"DOE^JANE")},
    "name as UN": {0x00100010: ("UN", b"DOE^JANE")},
    "dates and codes": {
        0x00080020: ("DA", b"20260101"),
        0x00080030: ("TM", b"120000.5 "),
        0x00080060: ("CS", b"CT "),
        0x00100040: ("CS", b"F "),
        0x00180015: ("CS", b"HEAD\\NECK"),
    },
    "UID padded with NUL": {0x00080018: ("UI", SOP.encode() + b"\x00")},
    "UID leading space": {0x0020000E: ("UI", b" 1.2.3")},
    "UID tab": {0x0020000E: ("UI", b"1.2.3\t\x00")},
    "UID two values": {0x0020000D: ("UI", b"1.2\\1.3")},
    "UID empty": {0x0020000D: ("UI", b"")},
    "UID bad": {0x0020000D: ("UI", b"1.02.3")},
}


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_values_equal_pydicoms(case: str, implicit: bool) -> None:
    part10 = _instance(CASES[case], implicit)
    _assert_same(part10, IMPLICIT if implicit else EXPLICIT)


def test_the_plain_case_is_decoded() -> None:
    assert _assert_same(_instance({}), EXPLICIT) == InstanceRecord(
        patient_id="PID1",
        patient_name="DOE^JOHN",
        patient_birth_date=None,
        patient_sex=None,
        study_instance_uid=STUDY,
        study_date=None,
        study_time=None,
        accession_number=None,
        study_description=None,
        referring_physician_name=None,
        study_id=None,
        series_instance_uid=SERIES,
        modality=None,
        series_number=3,
        series_description=None,
        body_part_examined=None,
        sop_instance_uid=SOP,
        sop_class_uid=CT,
        instance_number=12,
    )


def _part10_files() -> list[Path]:
    """The files pydicom ships (get_testdata_files would try to download more)."""
    data = Path(pydicom.data.__file__).parent
    paths = sorted((data / "test_files").glob("*.dcm")) + sorted(
        (data / "charset_files").glob("*.dcm")
    )
    return [path for path in paths if path.read_bytes()[128:132] == b"DICM"]


@pytest.mark.parametrize("path", _part10_files(), ids=lambda p: p.name)
def test_pydicom_test_files(path: Path) -> None:
    """Every Part 10 file of pydicom's test data, charset files included, as
    if received over the syntax its file meta names."""
    part10 = path.read_bytes()
    try:
        syntax = str(dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    except Exception:
        pytest.skip("pydicom cannot read its file meta")
    _assert_same(part10, syntax)
