"""C-FIND answers are the same whatever the wire asks for: every transfer
syntax the listener accepts, a requestor maximum PDU small enough to split
command and identifier, and a DEBUG listener (where pynetdicom's own send
path and logging handlers are used, see minipacs.listener.fastpath)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as STUDY_ROOT

from tests.helpers import Pacs, dcmtk, make_dataset, write_dataset

TOKEN = uuid.uuid4().hex[:8].upper()
NAMES = ["Buc^Jérôme", "Wang^XiaoDong=王^小東", "DOE^JOHN^^^DR"]


@pytest.fixture(scope="module")
def stored(pacs: Pacs, tmp_path_factory: pytest.TempPathFactory) -> None:
    files = tmp_path_factory.mktemp("wire")
    paths = [
        write_dataset(
            make_dataset(
                patient_id=f"{TOKEN}-{n}",
                patient_name=name,
                accession=f"W{TOKEN}{n}",
                study_description=f"STUDY {n} " + "X" * (40 + n),
                extra={"SpecificCharacterSet": "ISO_IR 192"},
            ),
            files,
        )
        for n, name in enumerate(NAMES)
    ]
    store = ["storescu", "-aec", pacs.ae_title, pacs.host, str(pacs.port)]
    dcmtk(*store, *map(str, paths), check=True)


def find(pacs: Pacs, transfer_syntax: str, max_pdu: int) -> list[tuple[int, Dataset | None]]:
    ae = AE(ae_title="WIRETEST")
    ae.add_requested_context(STUDY_ROOT, [transfer_syntax])
    ae.maximum_pdu_size = max_pdu
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
    assert assoc.is_established
    try:
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.QueryRetrieveLevel = "STUDY"
        ds.PatientID = f"{TOKEN}-*"
        for keyword in ("PatientName", "StudyDescription", "AccessionNumber", "StudyDate",
                        "ModalitiesInStudy", "NumberOfStudyRelatedInstances"):  # fmt: skip
            setattr(ds, keyword, "")
        answers = [(rsp.Status, ident) for rsp, ident in assoc.send_c_find(ds, STUDY_ROOT)]
    finally:
        assoc.release()
    return sorted(answers, key=lambda a: (a[0], str(a[1].PatientID) if a[1] else ""))


def plain(answers: list[tuple[int, Dataset | None]]) -> list[tuple[int, dict | None]]:
    return [(status, ident.to_json_dict() if ident else None) for status, ident in answers]


@pytest.mark.parametrize("max_pdu", [0, 200, 64])
@pytest.mark.parametrize(
    "transfer_syntax",
    [
        ImplicitVRLittleEndian,
        ExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        DeflatedExplicitVRLittleEndian,
    ],
)
def test_same_answers_on_any_wire(pacs: Pacs, stored: None, transfer_syntax, max_pdu) -> None:
    answers = find(pacs, transfer_syntax, max_pdu)
    assert [status for status, _ in answers] == [0x0000, 0xFF00, 0xFF00, 0xFF00]
    names = sorted(str(ident.PatientName) for _, ident in answers if ident)
    assert names == sorted(NAMES[:2] + ["DOE^JOHN^^^DR"])
    assert {str(ident.StudyDescription)[:7] for _, ident in answers if ident} == {
        f"STUDY {n}" for n in range(3)
    }
    assert plain(answers) == plain(find(pacs, ImplicitVRLittleEndian, 0))


def test_debug_listener_answers_the_same(
    start_listener: Callable[..., Pacs], pacs: Pacs, stored: None, tmp_path: Path
) -> None:
    debug = start_listener(PACS_LOG_LEVEL="DEBUG")
    assert plain(find(debug, ExplicitVRLittleEndian, 64)) == plain(
        find(pacs, ExplicitVRLittleEndian, 64)
    )
    # pynetdicom's per-message handlers ran: the outgoing C-FIND-RSP is logged.
    assert "C-FIND RSP" in debug.process.log()
