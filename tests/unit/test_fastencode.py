"""minipacs.fastencode writes exactly pydicom's bytes (PS3.5 7.1: implicit and
explicit VR, little and big endian), or declines and lets pydicom do it."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pydicom.valuerep import DA
from pynetdicom.dsutils import decode, encode

from minipacs.fastencode import encode_dataset
from minipacs.index.attributes import STUDY_ROOT
from minipacs.index.find import build_response
from minipacs.index.matching import MatchOptions, compile_find
from minipacs.listener.fastpath import fast_encode

# pydicom warns about the odd values built here on purpose (a CS with "É", a
# US that does not fit); the warnings are its own, not under test.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SYNTAXES = [(True, True), (False, True), (False, False)]  # implicit LE, explicit LE, BE
IDS = ["implicit-le", "explicit-le", "explicit-be"]


def flat_response() -> Dataset:
    """The shape of a C-FIND answer: text VRs, odd and even lengths, empty
    values of every kind, multi-valued CS, IS, US, UL, an empty sequence."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"  # odd length: space padding
    ds.RetrieveAETitle = "MINI_PACS"
    ds.ModalitiesInStudy = "CT\\MR\\US"
    ds.SOPClassesInStudy = ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"]
    ds.PatientName = "DOE^JOHN^^^"
    ds.PatientID = "PAT001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = ""
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.1234.1.123"  # odd: NUL padding
    ds.StudyDate = "20240115"
    ds.StudyTime = "101500.123"
    ds.AccessionNumber = None
    ds.StudyDescription = 'CT CHEST WITH "QUOTES" & <ANGLES>'
    ds.add_new(0x00080090, "PN", "WELBY^MARCUS==")  # trailing empty groups dropped
    ds.add_new(0x00201206, "IS", "3")
    ds.add_new(0x00201208, "IS", None)
    ds.add_new(0x00101030, "DS", "72.50")
    ds.add_new(0x00080201, "SH", "+0100")
    ds.add_new(0x00104000, "LT", "a comment\\with a backslash")
    ds.add_new(0x00321060, "LO", "")
    ds.add_new(0x00280010, "US", 512)
    ds.add_new(0x00280011, "US", None)
    ds.add_new(0x00280030, "DS", ["0.5", "0.5"])
    ds.add_new(0x00081110, "SQ", [])
    ds.add_new(0x00189517, "DT", "20240115101500")
    ds.add_new(0x00080056, "CS", "ONLINE")
    ds.add_new(0x00400275, "SQ", None)
    ds.add_new(0x00082111, "ST", "st text")
    ds.add_new(0x00081030, "LO", ["ONE", "TWO"])
    ds.add_new(0x00180015, "CS", "CHEST")
    ds.add_new(0x00209241, "UL", 70000)
    ds.add_new(0x00400009, "SH", "SPS1")
    ds.add_new(0x00081190, "UR", "http://pacs/wado")
    ds.add_new(0x00101010, "AS", "054Y")
    ds.add_new(0x00400254, "LO", "x" * 63)
    ds.add_new(0x00324000, "LT", "y" * 1025)
    ds.add_new(0x0040A160, "UT", "z" * 70001)  # 4-byte length VR, > 64 KiB
    ds.add_new(0x00700081, "UC", "uc")
    return ds


def charset_response(charset: list[str] | str, name: str) -> Callable[[], Dataset]:
    def build() -> Dataset:
        ds = flat_response()
        ds.SpecificCharacterSet = charset
        ds.PatientName = name
        ds.StudyDescription = name.replace("^", " ")
        ds.add_new(0x00081030, "LO", [name.split("^")[0], "ASCII"])
        return ds

    return build


CASES: dict[str, Callable[[], Dataset]] = {
    "ascii default": flat_response,
    "ascii in latin-1": charset_response("ISO_IR 100", "DOE^JOHN"),
    "latin-1": charset_response("ISO_IR 100", "Buc^Jérôme"),
    "greek": charset_response("ISO_IR 126", "Διονυσιος"),
    "utf-8": charset_response("ISO_IR 192", "Wang^XiaoDong=王^小東"),
    "jis": charset_response(["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎=やまだ^たろう"),
    "ascii in jis": charset_response(["", "ISO 2022 IR 87"], "YAMADA^TAROU"),
    "jis alone": charset_response("ISO 2022 IR 87", "YAMADA^TAROU"),  # tail escape
    "gb18030": charset_response("GB18030", "Wang^XiaoDong=王^小东"),
    "korean": charset_response(["", "ISO 2022 IR 149"], "Hong^Gildong=洪^吉洞=홍^길동"),
}


def pydicom_bytes(ds: Dataset, implicit: bool, little: bool) -> bytes | None:
    return encode(ds, implicit, little)


@pytest.mark.parametrize(("implicit", "little"), SYNTAXES, ids=IDS)
@pytest.mark.parametrize("case", list(CASES))
def test_same_bytes_as_pydicom(case: str, implicit: bool, little: bool) -> None:
    # A fresh dataset per encoder: pydicom caches a PersonName's encoded bytes.
    expected = pydicom_bytes(CASES[case](), implicit, little)
    assert expected
    assert encode_dataset(CASES[case](), implicit, little) == expected
    assert fast_encode(CASES[case](), implicit, little) == expected


@pytest.mark.parametrize(("implicit", "little"), SYNTAXES, ids=IDS)
def test_find_responses_encode_as_pydicom_and_decode_back(implicit: bool, little: bool) -> None:
    ident = Dataset()
    ident.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ident.QueryRetrieveLevel = "STUDY"
    ident.PatientName = "*"
    ident.NumberOfStudyRelatedInstances = ""
    ident.ModalitiesInStudy = ""
    ident.PatientComments = ""
    ident.add_new(0x00280010, "US", None)
    query = compile_find(ident, STUDY_ROOT, MatchOptions())
    by_name = {k.keyword: k for k in query.keys}
    row = [None] * 4
    row[by_name["PatientName"].index] = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    row[by_name["NumberOfStudyRelatedInstances"].index] = 12
    row[by_name["ModalitiesInStudy"].index] = "CT\\MR"
    row[by_name["StudyInstanceUID"].index] = "1.2.3"
    charset = ["", "ISO 2022 IR 87"]
    expected = encode(build_response(query, row, charset), implicit, little)
    fast = encode_dataset(build_response(query, row, charset), implicit, little)
    assert fast == expected
    back = decode(BytesIO(fast), implicit, little)
    assert str(back.PatientName) == "Yamada^Tarou=山田^太郎=やまだ^たろう"
    assert back.ModalitiesInStudy == ["CT", "MR"]
    assert back.NumberOfStudyRelatedInstances == 12


def test_command_set_keeps_group_length_and_identifier_drops_retired_ones() -> None:
    command = Dataset()
    command.CommandGroupLength = 70
    command.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.1"
    command.CommandField = 0x8020
    command.MessageIDBeingRespondedTo = 7
    command.CommandDataSetType = 0x0001
    command.Status = 0xFF00
    command.ErrorComment = "odd"
    assert encode_dataset(command, True, True) == encode(command, True, True)
    ident = flat_response()
    ident.add_new(0x00080000, "UL", 4)  # retired group length: pydicom skips it
    assert encode_dataset(ident, True, True) == encode(flat_response(), True, True)


def with_value(tag: int, vr: str, value: object) -> Callable[[], Dataset]:
    def build() -> Dataset:
        ds = flat_response()
        ds.add_new(tag, vr, value)
        return ds

    return build


def decoded() -> Dataset:
    return decode(BytesIO(encode(flat_response(), False, True)), False, True)


def encoded_person_name() -> Dataset:
    ds = flat_response()
    encode(ds, True, True)  # PatientName now holds its encoded bytes
    return ds


def da_object() -> Dataset:
    ds = flat_response()
    ds.add_new(0x00100030, "DA", DA(datetime.date(1970, 1, 1)))
    return ds


DECLINED = {  # pydicom encodes the whole dataset
    "float VR": with_value(0x00101020, "FD", 1.75),
    "ambiguous VR": with_value(0x00281101, "US or SS", 1),
    "sequence with items": with_value(0x00081110, "SQ", [flat_response()]),
    "decoded (raw) elements": decoded,
    "unknown charset": charset_response("ISO_IR 999", "DOE^JOHN"),
    "short VR over 64 KiB": with_value(0x00400254, "LO", "x" * 70000),
}
PER_ELEMENT = {  # pydicom encodes one element
    "non-ASCII in a default-charset VR": with_value(0x00080060, "CS", "É"),
    "PersonName holding its bytes": encoded_person_name,
    "DA object": da_object,
}


@pytest.mark.parametrize(("implicit", "little"), SYNTAXES, ids=IDS)
@pytest.mark.parametrize("case", list(DECLINED) + list(PER_ELEMENT))
def test_falls_back_to_pydicom(case: str, implicit: bool, little: bool) -> None:
    build = {**DECLINED, **PER_ELEMENT}[case]
    expected = pydicom_bytes(build(), implicit, little)
    fast = encode_dataset(build(), implicit, little)
    if case in DECLINED and not (implicit and "64 KiB" in case):  # implicit: 4-byte lengths
        assert fast is None
    else:
        assert fast == expected
    assert fast_encode(build(), implicit, little) == expected


def test_deflated_and_failures_are_pynetdicoms() -> None:
    ds = flat_response()
    assert fast_encode(ds, False, True, True) == encode(flat_response(), False, True, True)
    bad = flat_response()
    bad.add_new(0x00280010, "US", 70000)  # does not fit: pynetdicom logs, returns None
    assert fast_encode(bad, True, True) is None
