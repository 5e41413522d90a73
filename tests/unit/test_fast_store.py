"""The listener's C-STORE reader against PDUs as pynetdicom encodes them: it
stores C-STORE requests and answers them as pynetdicom would, and hands every
other message to pynetdicom untouched and in order."""

from __future__ import annotations

import queue
import socket
from io import BytesIO
from types import SimpleNamespace

import pytest
from pynetdicom.dimse_messages import C_ECHO_RQ, C_FIND_RQ, C_STORE_RQ, C_STORE_RSP
from pynetdicom.dimse_primitives import C_ECHO, C_FIND, C_STORE
from pynetdicom.dul import _PDU_TYPES
from pynetdicom.pdu import A_RELEASE_RQ, P_DATA_TF
from pynetdicom.presentation import build_context

from minipacs.listener import fast_store
from minipacs.netio import read_exactly
from tests.unit.dimse_pdus import CT, c_store_rsp, encode

FIND = "1.2.840.10008.5.1.4.1.2.2.1"
VERIFICATION = "1.2.840.10008.1.1"
EXPLICIT = "1.2.840.10008.1.2.1"
CT_CX, FIND_CX, ECHO_CX = 1, 3, 5


def store_rq(dataset: bytes, message_id: int = 7, max_pdu: int = 16384) -> list[bytes]:
    primitive = C_STORE()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = CT
    primitive.AffectedSOPInstanceUID = "1.2.3.4.5"
    primitive.Priority = 2
    primitive.DataSet = BytesIO(dataset)
    message = C_STORE_RQ()
    message.primitive_to_message(primitive)
    return encode(message, CT_CX, max_pdu)


def store_rsp(
    status: int, comment: str | None = None, context_id: int = CT_CX, max_pdu: int = 16384
) -> list[bytes]:
    """A peer's C-STORE-RSP to one of our C-GET sub-operations."""
    return c_store_rsp(
        status, 11, "1.2.3.4.6", context_id=context_id, max_pdu=max_pdu, comment=comment
    )


def echo_rq() -> list[bytes]:
    primitive = C_ECHO()
    primitive.MessageID = 1
    primitive.AffectedSOPClassUID = VERIFICATION
    message = C_ECHO_RQ()
    message.primitive_to_message(primitive)
    return encode(message, ECHO_CX, 16384)


def find_rq(max_pdu: int) -> list[bytes]:
    primitive = C_FIND()
    primitive.MessageID = 2
    primitive.AffectedSOPClassUID = FIND
    primitive.Priority = 2
    primitive.Identifier = BytesIO(b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY " * 40)
    message = C_FIND_RQ()
    message.primitive_to_message(primitive)
    return encode(message, FIND_CX, max_pdu)


class Peer:
    """A fake acceptor association around a real socket pair: what the
    reader touches of pynetdicom's Association and DULServiceProvider."""

    def __init__(self, max_pdu: int = 16384) -> None:
        self.ours, self.theirs = socket.socketpair()
        self.ours.settimeout(5)
        self.theirs.settimeout(5)
        self.pynetdicom_reads = 0
        contexts = {}
        for cx_id, abstract in ((CT_CX, CT), (FIND_CX, FIND), (ECHO_CX, VERIFICATION)):
            cx = build_context(abstract, [EXPLICIT])
            cx.context_id = cx_id
            contexts[cx_id] = cx

        def decode(bytestream: bytearray) -> tuple[object, str]:
            pdu_cls, event = _PDU_TYPES[bytes(bytestream[0:1])]
            pdu = pdu_cls()
            pdu.decode(bytes(bytestream))
            return pdu, event

        def pynetdicom_read() -> None:
            self.pynetdicom_reads += 1

        transport = SimpleNamespace(socket=self.ours, recv=lambda n: read_exactly(self.ours, n))
        self.dul = SimpleNamespace(
            socket=transport,
            state_machine=SimpleNamespace(current_state="Sta6"),
            event_queue=queue.Queue(),
            _recv_pdu=queue.Queue(),
            _decode_pdu=decode,
            _read_pdu_data=pynetdicom_read,
        )
        self.assoc = SimpleNamespace(
            dul=self.dul,
            _accepted_cx=contexts,
            dimse=SimpleNamespace(maximum_pdu_size=max_pdu, msg_queue=queue.Queue()),
            requestor=SimpleNamespace(address="127.0.0.1"),
        )
        self.stored: list[fast_store.Request] = []
        self.status = (0x0000, None)
        fast_store.install(self.assoc, self._store)  # type: ignore[arg-type]

    def _store(self, assoc: object, request: fast_store.Request) -> tuple[int, str | None]:
        self.stored.append(request)
        return self.status

    def send(self, pdus: list[bytes]) -> None:
        """The peer sends these PDUs; the DUL reads each."""
        for pdu in pdus:
            self.theirs.sendall(pdu)
            self.dul._read_pdu_data()

    def handed_to_pynetdicom(self) -> list[tuple[str, bytes]]:
        out = []
        while not self.dul.event_queue.empty():
            out.append((self.dul.event_queue.get(), self.dul._recv_pdu.get().encode()))
        return out

    def response(self) -> C_STORE:
        """Read our C-STORE-RSP from the wire and decode it with pynetdicom."""
        message = C_STORE_RSP()
        while True:
            header = read_exactly(self.theirs, 6)
            body = read_exactly(self.theirs, int.from_bytes(header[2:6], "big"))
            pdu = P_DATA_TF()
            pdu.decode(bytes(header + body))
            if message.decode_msg(pdu.to_primitive()):
                return message.message_to_primitive()


@pytest.mark.parametrize("max_pdu", [0, 16384, 4096, 64])
def test_a_c_store_is_stored_and_answered_as_pynetdicom_would(max_pdu: int) -> None:
    peer = Peer()
    dataset = bytes(range(256)) * 300
    peer.send(store_rq(dataset, message_id=9, max_pdu=max_pdu))
    (request,) = peer.stored
    assert b"".join(request.dataset) == dataset
    assert (request.sop_class_uid, request.sop_instance_uid) == (CT, "1.2.3.4.5")
    assert (request.message_id, request.context_id) == (9, CT_CX)
    assert (request.context_sop_class_uid, request.transfer_syntax_uid) == (CT, EXPLICIT)
    rsp = peer.response()
    assert rsp.Status == 0x0000
    assert rsp.MessageIDBeingRespondedTo == 9
    assert rsp.AffectedSOPClassUID == CT and rsp.AffectedSOPInstanceUID == "1.2.3.4.5"
    assert peer.handed_to_pynetdicom() == []


def test_a_failure_status_carries_its_comment() -> None:
    peer = Peer()
    peer.status = (0xA700, "index database unavailable")
    peer.send(store_rq(b"\x08\x00\x16\x00\x00\x00\x00\x00"))
    rsp = peer.response()
    assert rsp.Status == 0xA700
    assert rsp.ErrorComment == "index database unavailable"


def test_other_messages_go_to_pynetdicom_in_order_between_stores() -> None:
    peer = Peer()
    echo, find = echo_rq(), find_rq(max_pdu=128)
    assert len(find) > 3  # its identifier spans several PDUs
    peer.send(store_rq(b"\x08\x00\x16\x00\x00\x00\x00\x00", message_id=1))
    peer.send(echo + find)
    peer.send(store_rq(b"\x08\x00\x16\x00\x00\x00\x00\x00", message_id=3))
    assert [r.message_id for r in peer.stored] == [1, 3]
    handed = peer.handed_to_pynetdicom()
    assert [event for event, _ in handed] == ["Evt10"] * len(echo + find)
    assert [pdu for _, pdu in handed] == echo + find


def test_release_goes_to_pynetdicom() -> None:
    peer = Peer()
    release = A_RELEASE_RQ().encode()
    peer.send([release])
    assert peer.handed_to_pynetdicom() == [("Evt12", release)]


def test_outside_sta6_pynetdicom_reads() -> None:
    peer = Peer()
    peer.dul.state_machine.current_state = "Sta2"
    peer.dul._read_pdu_data()
    assert peer.pynetdicom_reads == 1


def test_a_command_inside_a_dataset_aborts() -> None:
    peer = Peer()
    first, *rest = store_rq(bytes(5000), max_pdu=1024)
    peer.send([first, rest[0]])
    peer.send(echo_rq())
    assert peer.stored == []
    assert peer.dul.event_queue.get_nowait() == "Evt19"


def test_a_closed_connection_is_evt17() -> None:
    peer = Peer()
    peer.theirs.close()
    peer.dul._read_pdu_data()
    assert peer.dul.event_queue.get_nowait() == "Evt17"


@pytest.mark.parametrize("max_pdu", [16384, 64])
@pytest.mark.parametrize("status", [0x0000, 0xB000, 0xA700])
def test_a_c_get_sub_operation_response_is_queued_as_pynetdicom_would(
    status: int, max_pdu: int
) -> None:
    peer = Peer()
    peer.send(store_rsp(status, max_pdu=max_pdu))
    context_id, rsp = peer.assoc.dimse.msg_queue.get_nowait()
    assert context_id == CT_CX and isinstance(rsp, C_STORE)
    assert (rsp.Status, rsp.MessageIDBeingRespondedTo) == (status, 11)
    assert (rsp.AffectedSOPClassUID, rsp.AffectedSOPInstanceUID) == (CT, "1.2.3.4.6")
    assert peer.handed_to_pynetdicom() == []
    # and the association goes on: the next request is still served
    peer.send(store_rq(b"\x08\x00\x16\x00\x00\x00\x00\x00", message_id=12))
    assert [r.message_id for r in peer.stored] == [12]


def test_a_response_with_more_than_the_plain_elements_goes_to_pynetdicom() -> None:
    peer = Peer()
    pdus = store_rsp(0xA700, comment="disk full")
    peer.send(pdus)
    assert peer.assoc.dimse.msg_queue.empty()
    assert [pdu for _, pdu in peer.handed_to_pynetdicom()] == pdus


def test_a_response_on_a_context_not_accepted_goes_to_pynetdicom() -> None:
    peer = Peer()
    pdus = store_rsp(0x0000, context_id=7)
    peer.send(pdus)
    assert peer.assoc.dimse.msg_queue.empty()
    assert [pdu for _, pdu in peer.handed_to_pynetdicom()] == pdus
