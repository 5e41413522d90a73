"""C-FIND response identifiers (PS3.4 C.4.1.1.3) built from index rows, and
the character set that carries them (PS3.5 6.1), without a network."""

from __future__ import annotations

from io import BytesIO

from pydicom.dataset import Dataset
from pynetdicom.dsutils import decode, encode

from minipacs.index.attributes import STUDY_ROOT
from minipacs.index.find import build_response, response_charset
from minipacs.index.matching import MatchOptions, compile_find

JIS = ["", "ISO 2022 IR 87"]


def test_ascii_values_need_no_charset_but_echo_the_requests() -> None:
    assert response_charset(["DOE^JOHN"], []) == []
    assert response_charset(["DOE^JOHN"], ["ISO_IR 100"]) == ["ISO_IR 100"]


def test_request_charset_kept_when_it_carries_every_value() -> None:
    assert response_charset(["Buc^Jérôme"], ["ISO_IR 100"]) == ["ISO_IR 100"]
    assert response_charset(["Yamada^Tarou=山田^太郎=やまだ^たろう"], JIS) == JIS


def test_utf8_when_the_request_charset_cannot_carry_a_value() -> None:
    assert response_charset(["Διονυσιος"], ["ISO_IR 100"]) == ["ISO_IR 192"]
    assert response_charset(["Wang^XiaoDong=王^小東", "Buc^Jérôme"], JIS) == ["ISO_IR 192"]
    assert response_charset(["王"], []) == ["ISO_IR 192"]


def roundtrip(ds: Dataset) -> Dataset:
    """What the SCU decodes from the bytes pynetdicom would send."""
    return decode(BytesIO(encode(ds, True, True)), True, True)


def test_response_has_requested_keys_unique_keys_and_decodes_back() -> None:
    ident = Dataset()
    ident.SpecificCharacterSet = JIS
    ident.QueryRetrieveLevel = "STUDY"
    ident.PatientName = "山田*"
    ident.NumberOfStudyRelatedInstances = ""
    ident.PatientComments = ""
    ident.add_new(0x00280010, "US", None)  # Rows: binary VR, not held by the index
    query = compile_find(ident, STUDY_ROOT, MatchOptions())
    by_name = {k.keyword: k for k in query.keys}
    row = [None] * 3
    row[by_name["PatientName"].index] = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    row[by_name["NumberOfStudyRelatedInstances"].index] = 12
    row[by_name["StudyInstanceUID"].index] = "1.2.3"
    rsp = roundtrip(build_response(query, row, JIS))
    assert list(rsp.SpecificCharacterSet) == JIS
    assert str(rsp.PatientName) == "Yamada^Tarou=山田^太郎=やまだ^たろう"
    assert rsp.NumberOfStudyRelatedInstances == 12
    assert rsp.StudyInstanceUID == "1.2.3"
    assert rsp.QueryRetrieveLevel == "STUDY"
    assert rsp.PatientComments == ""
    assert rsp.Rows is None
    assert set(rsp.dir()) == {
        "SpecificCharacterSet", "QueryRetrieveLevel", "PatientName", "PatientComments",
        "StudyInstanceUID", "NumberOfStudyRelatedInstances", "Rows",
    }  # fmt: skip
