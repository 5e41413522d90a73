"""The listener's C-FIND send path (minipacs.listener.fastpath) puts on the
wire the messages pynetdicom's own `send_msg` would: same command set and
identifier bytes, the same fragments when a message exceeds the peer's
maximum PDU, and pynetdicom's path whenever EVT_DIMSE_SENT is observed."""

from __future__ import annotations

import queue
from io import BytesIO
from types import SimpleNamespace

import pytest
from pydicom.dataset import Dataset
from pynetdicom import _config, dimse_messages, evt, service_class
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_messages import C_FIND_RSP, DIMSEMessage
from pynetdicom.dimse_primitives import C_FIND
from pynetdicom.dsutils import encode
from pynetdicom.pdu_primitives import P_DATA

from minipacs.listener import fastpath

STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.1"


class Recorder:
    """Stands in for the DUL: records what is sent; its queue is always empty."""

    def __init__(self) -> None:
        self.sent: list[P_DATA] = []
        self.to_provider_queue: queue.Queue = queue.Queue()

    def send_pdu(self, pdata: P_DATA) -> None:
        self.sent.append(pdata)


def provider(max_pdu: int, handlers: list | None = None) -> DIMSEServiceProvider:
    assoc = SimpleNamespace(
        is_requestor=False,
        requestor=SimpleNamespace(maximum_length=max_pdu),
        dul=Recorder(),
        get_handlers=lambda event: list(handlers or []),
    )
    return DIMSEServiceProvider(assoc)  # type: ignore[arg-type]


def identifier(n: int) -> BytesIO:
    ds = Dataset()
    ds.QueryRetrieveLevel = "PATIENT"
    ds.PatientName = f"DOE^JOHN{n}"
    ds.PatientID = f"PAT{n:05d}" + "X" * (n % 7)
    return BytesIO(encode(ds, True, True))


def response(status: int, message_id: int, n: int | None = None, **extra: object) -> C_FIND:
    rsp = C_FIND()
    rsp.MessageID = message_id
    rsp.MessageIDBeingRespondedTo = message_id
    rsp.AffectedSOPClassUID = STUDY_ROOT
    rsp.Status = status
    if n is not None:
        rsp.Identifier = identifier(n)
    for keyword, value in extra.items():
        setattr(rsp, keyword, value)
    return rsp


RESPONSES = [
    lambda: response(0xFF00, 1, 1),
    lambda: response(0xFF01, 1, 2),
    lambda: response(0xFF00, 2, 3),  # another request: another command set
    lambda: response(0x0000, 2),
    lambda: response(0xFE00, 3),
    lambda: response(0xA900, 4, ErrorComment="bad level"),
    lambda: response(0xC000, 5, OffendingElement=[0x00100010], ErrorComment="bad key"),
]


def streams(sent: list[P_DATA]) -> tuple[list[tuple[int, bytes]], bytes, bytes]:
    """All PDVs, and the command and data set bytes they carry."""
    pdvs = [pdv for pdata in sent for pdv in pdata.presentation_data_value_list]
    command = b"".join(data[1:] for _, data in pdvs if data[0] & 1)
    dataset = b"".join(data[1:] for _, data in pdvs if not data[0] & 1)
    return pdvs, command, dataset


@pytest.mark.parametrize("max_pdu", [0, 16382, 200, 64, 20])
def test_same_messages_as_pynetdicom(max_pdu: int) -> None:
    ours, theirs = provider(max_pdu), provider(max_pdu)
    for build in RESPONSES:
        fastpath.send_msg(ours, build(), 7)
        fastpath._pynetdicom_send_msg(theirs, build(), 7)
        mine, reference = ours.dul.sent, theirs.dul.sent
        assert streams(mine)[1:] == streams(reference)[1:]
        if len(mine) != 1:  # too big for one PDU: pynetdicom's fragments exactly
            assert streams(mine)[0] == streams(reference)[0]
        # What the peer decodes: pynetdicom's own receiver reassembles it.
        decoder = DIMSEMessage()
        assert [decoder.decode_msg(pdata) for pdata in mine][-1] is True
        assert decoder.command_set == _decoded(reference).command_set
        mine.clear()
        reference.clear()


def _decoded(sent: list[P_DATA]) -> DIMSEMessage:
    decoder = DIMSEMessage()
    for pdata in sent:
        decoder.decode_msg(pdata)
    return decoder


def test_command_and_identifier_share_one_pdu_when_they_fit() -> None:
    ours = provider(16382)
    fastpath.send_msg(ours, response(0xFF00, 9, 1), 3)
    [pdata] = ours.dul.sent
    headers = [(cx, data[0]) for cx, data in pdata.presentation_data_value_list]
    assert headers == [(3, 0x03), (3, 0x02)]  # last command fragment, last data fragment
    assert sum(len(data) + 4 for _, data in pdata.presentation_data_value_list) <= 16382


def test_pdu_boundary() -> None:
    """Two PDV items (4-byte length, context ID, control header, fragment) fit
    the peer's maximum PDU length exactly, or the message is fragmented."""
    rsp = response(0xFF00, 1, 4)
    size = len(fastpath.find_rsp_command(rsp)) + 6 + len(rsp.Identifier.getvalue()) + 6
    exact, short, reference = provider(size), provider(size - 1), provider(size - 1)
    fastpath.send_msg(exact, rsp, 1)
    fastpath.send_msg(short, rsp, 1)
    fastpath._pynetdicom_send_msg(reference, rsp, 1)
    assert len(exact.dul.sent) == 1
    assert streams(short.dul.sent)[0] == streams(reference.dul.sent)[0]
    assert len(short.dul.sent) > 1


def test_observed_messages_take_pynetdicoms_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """At DEBUG pynetdicom's logging handler is bound to EVT_DIMSE_SENT and
    expects a message object: pynetdicom builds and sends it."""
    ours = provider(0)
    ours.assoc.get_handlers = lambda event: [(print, None)] if event is evt.EVT_DIMSE_SENT else []
    called: list[tuple] = []
    monkeypatch.setattr(fastpath, "_pynetdicom_send_msg", lambda *args: called.append(args))
    rsp = response(0xFF00, 1, 1)
    fastpath.send_msg(ours, rsp, 1)
    assert called == [(ours, rsp, 1)]
    assert ours.dul.sent == []


def test_command_set_is_pynetdicoms() -> None:
    for build in RESPONSES[:5]:
        rsp = build()
        message = C_FIND_RSP()
        message.primitive_to_message(rsp)
        assert fastpath.find_rsp_command(rsp) == encode(message.command_set, True, True)


def test_install_rebinds_encode_and_send_and_quietens_below_debug(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for target, name in [
        (service_class, "encode"),
        (dimse_messages, "encode"),
        (DIMSEServiceProvider, "send_msg"),
        (_config, "LOG_HANDLER_LEVEL"),
        (_config, "LOG_RESPONSE_IDENTIFIERS"),
    ]:
        monkeypatch.setattr(target, name, getattr(target, name))  # restored afterwards
    fastpath.install("DEBUG")
    assert service_class.encode is fastpath.fast_encode
    assert dimse_messages.encode is fastpath.fast_encode
    assert DIMSEServiceProvider.send_msg is fastpath.send_msg
    assert _config.LOG_HANDLER_LEVEL == "standard"
    fastpath.install("INFO")
    fastpath.install("INFO")
    assert DIMSEServiceProvider.send_msg is fastpath.send_msg
    assert _config.LOG_HANDLER_LEVEL == "none"
    assert _config.LOG_RESPONSE_IDENTIFIERS is False


VALUES = {"UI": "1.2.840.10008.5.1.4.1.1.2", "US": 7, "UL": 70, "AE": "STORESCU", "LO": "why"}


@pytest.mark.parametrize(
    "name", sorted({cls.__name__ for _, cls in dimse_messages._MESSAGE_TYPES.values()})
)
def test_every_command_set_encodes_as_pydicom(name: str) -> None:
    """Step 1 also encodes the command sets of every other DIMSE message."""
    message = getattr(dimse_messages, name)()
    for elem in message.command_set:
        if elem.VR in VALUES:
            elem.value = VALUES[elem.VR]
        elif elem.VR == "AT":
            elem.value = [0x00100010, 0x00100020]
    expected = encode(message.command_set, True, True)
    assert expected
    assert fastpath.fast_encode(message.command_set, True, True) == expected


def test_cache_key_covers_every_c_find_rsp_command_element() -> None:
    derived = {"CommandGroupLength", "CommandField", "CommandDataSetType", "OffendingElement"}
    keywords = set(dimse_messages._COMMAND_SET_KEYWORDS["C-FIND-RSP"])
    assert keywords - derived == set(fastpath._RSP_KEYWORDS)
