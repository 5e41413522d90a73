"""Malformed C-FIND identifiers, one after another on one association: each
gets a failure status (PS3.4 C.4.1.1.4: 0xA900 identifier does not match the
SOP class, 0xC000 unable to process) with an ErrorComment, the association
stays up, and a good query afterwards is answered."""

from __future__ import annotations

import warnings
from pathlib import Path

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind as PATIENT_ROOT,
)
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind as STUDY_ROOT,
)

from tests.e2e.fault_helpers import c_find, store
from tests.helpers import Pacs, dcmtk, make_dataset

DOES_NOT_MATCH = 0xA900
UNABLE = 0xC000


def identifier(level: str | None, **keys: object) -> Dataset:
    ds = Dataset()
    if level is not None:
        ds.QueryRetrieveLevel = level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of the values we mean to send
        for keyword, value in keys.items():
            setattr(ds, keyword, value)
    return ds


def raw(ds: Dataset, keyword: str, vr: str, value: bytes) -> Dataset:
    """An element sent exactly as these bytes, unchecked by pydicom."""
    tag = Tag(keyword)
    ds[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)
    return ds


def as_sequence(ds: Dataset, keyword: str, items: list[Dataset]) -> Dataset:
    """A sequence (VR SQ) under the tag of a string attribute."""
    ds.add(DataElement(Tag(keyword), "SQ", Sequence(items)))
    return ds


def malformed() -> list[tuple[str, str, Dataset, int]]:
    uid = generate_uid()
    item = Dataset()
    item.CodeValue = "X"
    return [
        ("no level", STUDY_ROOT, identifier(None, PatientID=""), DOES_NOT_MATCH),
        ("unknown level", STUDY_ROOT, identifier("FRAME"), DOES_NOT_MATCH),
        ("patient level in Study Root", STUDY_ROOT, identifier("PATIENT"), DOES_NOT_MATCH),
        ("empty level", PATIENT_ROOT, identifier("", PatientID="X"), DOES_NOT_MATCH),
        ("series key at study level", STUDY_ROOT, identifier("STUDY", SeriesInstanceUID=uid),
         DOES_NOT_MATCH),
        ("Modality at patient level", PATIENT_ROOT, identifier("PATIENT", Modality="CT"),
         DOES_NOT_MATCH),
        ("image key at series level", STUDY_ROOT, identifier("SERIES", SOPInstanceUID=uid),
         DOES_NOT_MATCH),
        ("study key at patient level", PATIENT_ROOT,
         identifier("PATIENT", StudyDate="20240101"), DOES_NOT_MATCH),
        ("DA too short", STUDY_ROOT, identifier("STUDY", StudyDate="2024"), UNABLE),
        ("DA with hyphens", STUDY_ROOT, identifier("STUDY", StudyDate="2024-01-01"), UNABLE),
        ("DA three bounds", STUDY_ROOT,
         identifier("STUDY", StudyDate="20240101-20240201-20240301"), UNABLE),
        ("DA range without bounds", STUDY_ROOT, identifier("STUDY", StudyDate="-"), UNABLE),
        ("DA words", STUDY_ROOT, identifier("STUDY", StudyDate="yesterday"), UNABLE),
        ("DA with SQL", PATIENT_ROOT,
         identifier("PATIENT", PatientBirthDate="1970' OR '1'='1"), UNABLE),
        ("TM with colons", STUDY_ROOT, identifier("STUDY", StudyTime="10:15"), UNABLE),
        ("TM letters in range", STUDY_ROOT, identifier("STUDY", StudyTime="1015a-"), UNABLE),
        ("IS not a number", STUDY_ROOT,
         raw(identifier("SERIES"), "SeriesNumber", "IS", b"one "), UNABLE),
        ("LO over 64", PATIENT_ROOT, identifier("PATIENT", PatientID="X" * 65), UNABLE),
        ("SH over 16", STUDY_ROOT, identifier("STUDY", AccessionNumber="A" * 17), UNABLE),
        ("UI over 64", STUDY_ROOT, identifier("STUDY", StudyInstanceUID="1." + "2" * 70), UNABLE),
        ("CS over 16", STUDY_ROOT, identifier("SERIES", Modality="C" * 17), UNABLE),
        ("PN group over 64", PATIENT_ROOT, identifier("PATIENT", PatientName="D" * 65), UNABLE),
        ("sequence for PN", PATIENT_ROOT,
         as_sequence(identifier("PATIENT"), "PatientName", [item]), DOES_NOT_MATCH),
        ("empty sequence for LO", STUDY_ROOT,
         as_sequence(identifier("STUDY"), "StudyDescription", []), DOES_NOT_MATCH),
    ]  # fmt: skip


def test_twenty_malformed_identifiers_on_one_association(pacs: Pacs) -> None:
    ds = make_dataset(patient_id="MALFORMED-OK", accession="MALF1")
    assert store(pacs, [ds])[0].Status == 0

    ae = AE(ae_title="MALFORMED")
    # Explicit VR only, so a sequence really travels as SQ.
    ae.add_requested_context(PATIENT_ROOT, ExplicitVRLittleEndian)
    ae.add_requested_context(STUDY_ROOT, ExplicitVRLittleEndian)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
    assert assoc.is_established
    try:
        cases = malformed()
        assert len(cases) >= 20
        answers = {}
        for name, model, query, expected in cases:
            responses = c_find(assoc, query, model)
            assert assoc.is_established, f"association dropped after {name}"
            assert len(responses) == 1, (name, responses)
            rsp, found = responses[0]
            assert found is None, name
            assert rsp.Status == expected, (name, hex(rsp.Status))
            assert rsp.get("ErrorComment"), name
            answers[name] = rsp.ErrorComment

        good = identifier("STUDY", PatientID="MALFORMED-OK", AccessionNumber="")
        responses = c_find(assoc, good, STUDY_ROOT)
        assert [r.Status for r, _ in responses] == [0xFF00, 0x0000]
        assert responses[0][1].StudyInstanceUID == ds.StudyInstanceUID
        assert responses[0][1].AccessionNumber == "MALF1"
    finally:
        assoc.release()
    log = pacs.process.log()
    assert "Traceback" not in log


def test_findscu_number_too_large_for_is(pacs: Pacs, tmp_path: Path) -> None:
    """`1e999` parses as infinity: refused like any malformed value, no
    traceback, and not pynetdicom's catch-all 0xC311."""
    result = dcmtk(
        "findscu", "-v", "-S", "-aec", pacs.ae_title,
        "-k", "QueryRetrieveLevel=IMAGE", "-k", "InstanceNumber=1e999",
        pacs.host, str(pacs.port), timeout=30,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert "Failed: UnableToProcess" in output, output
    assert "Traceback" not in pacs.process.log()
    log = pacs.process.log()
    assert "Traceback" not in log
    assert "failed unexpectedly" not in log
