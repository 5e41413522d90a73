"""C-STORE requests received and answered in the DUL thread.

pynetdicom takes each P-DATA-TF PDU through its state machine, reassembles
the message in its DIMSE layer (decoding the command set with pydicom), hands
it to the association thread, which runs the handler and queues the response
back to the DUL thread: about 1 ms of CPU and three thread hand-offs per
C-STORE, a quarter of what storing a 512 KiB image costs. On an established
association this reader takes the PDUs off the socket itself: the command set
is parsed here (PS3.7 E.1, Implicit VR Little Endian), and a C-STORE-RQ on an
accepted storage context is stored by `store` right here, its response
written straight back to the socket (PS3.7 9.3.1.2). P-DATA exchanges leave
pynetdicom's state machine where it is (Sta6), so it never notices.

The C-STORE-RSPs to a C-GET's sub-operations are read here too: a plain one
(only the elements every response holds) is queued for the association
thread as pynetdicom's DIMSE layer would queue it.

Every other message (C-ECHO, C-FIND, C-MOVE, N-CREATE ...) and every other
PDU (release, abort) goes to pynetdicom unchanged, in order: PDUs are kept
raw until the command set says what the message is. A PDU this reader cannot
follow (fragments of another context, a command inside a dataset) is an
invalid PDU for pynetdicom's state machine (Evt19: A-ABORT).
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass

from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.service_class import StorageServiceClass
from pynetdicom.sop_class import uid_to_service_class

from minipacs.sender.fastsend import (
    C_STORE_RQ,
    C_STORE_RSP,
    NO_DATASET,
    PDU_HEADER,
    PDV_HEADER,
    command_element,
    command_group,
    command_values,
    pdus,
)
from minipacs.uids import encoded_uid

log = logging.getLogger(__name__)

P_DATA_TF = 0x04
# Command Group Length, Affected SOP Class/Instance UID, Command Field,
# Message ID Being Responded To, Command Data Set Type, Status (PS3.7 9.3.1.2)
_PLAIN_RESPONSE = {0x0000, 0x0002, 0x1000, 0x0100, 0x0120, 0x0800, 0x0900}


@dataclass(frozen=True)
class Request:
    """A C-STORE-RQ as received: what the archive needs to store it."""

    message_id: int
    sop_class_uid: str
    sop_instance_uid: str
    context_id: int
    context_sop_class_uid: str
    transfer_syntax_uid: str
    dataset: list[memoryview]  # the fragments as received, not copied


# store(assoc, request) -> (status, error comment or None)
Store = Callable[[Association, Request], tuple[int, str | None]]


def install(assoc: Association, store: Store) -> None:
    """Read this acceptor association's PDUs through a Reader."""
    assoc.dul._read_pdu_data = Reader(assoc, store).read  # type: ignore[method-assign]


def _us(values: dict[int, bytes], element: int) -> int | None:
    raw = values.get(element)
    return struct.unpack("<H", raw)[0] if raw is not None and len(raw) == 2 else None


def _ui(values: dict[int, bytes], element: int) -> str | None:
    raw = values.get(element)
    if raw is None:
        return None
    return raw.rstrip(b"\x00 ").decode("ascii", "replace")


def _pdv_items(body: bytes | bytearray) -> list[tuple[int, int, memoryview]] | None:
    """(context id, message control header, fragment) of each PDV item of a
    P-DATA-TF body (PS3.8 9.3.5.1); None when they do not add up. The
    fragments are views of `body`."""
    items = []
    view = memoryview(body)
    offset = 0
    while offset < len(body):
        if offset + PDV_HEADER.size > len(body):
            return None
        item_length, context_id, control = PDV_HEADER.unpack_from(body, offset)
        end = offset + 4 + item_length
        if item_length < 2 or end > len(body):
            return None
        items.append((context_id, control, view[offset + PDV_HEADER.size : end]))
        offset = end
    return items


def response_command(request: Request, status: int, comment: str | None) -> bytes:
    """C-STORE-RSP command set (PS3.7 table 9.3-2), elements in tag order."""
    elements = [
        command_element(0x0002, encoded_uid(request.sop_class_uid)),
        command_element(0x0100, struct.pack("<H", C_STORE_RSP)),
        command_element(0x0120, struct.pack("<H", request.message_id)),
        command_element(0x0800, struct.pack("<H", NO_DATASET)),
        command_element(0x0900, struct.pack("<H", status)),
    ]
    if comment:
        text = comment[:64].encode("ascii", "replace")
        elements.append(command_element(0x0902, text + b" " if len(text) % 2 else text))
    elements.append(command_element(0x1000, encoded_uid(request.sop_instance_uid)))
    return command_group(elements)


class Reader:
    """Stands in for `DULServiceProvider._read_pdu_data` (DUL thread only)."""

    def __init__(self, assoc: Association, store: Store) -> None:
        self.assoc = assoc
        self.dul = assoc.dul
        self.pynetdicom_read = self.dul._read_pdu_data
        self.store = store
        self._reset()
        # pynetdicom is handling the current message: it gets the PDUs until
        # its dataset ends.
        self.passing = False

    def _reset(self) -> None:
        self.raw: list[bytes] = []  # PDUs of the message, until it is known
        self.command = bytearray()
        self.request: dict | None = None  # set once a C-STORE-RQ command is complete
        self.dataset: list[memoryview] = []

    def read(self) -> None:
        dul = self.dul
        if dul.state_machine.current_state != "Sta6" or not self._plain_socket():
            self._hand_back_all()
            self.pynetdicom_read()
            return
        try:
            header = bytes(dul.socket.recv(PDU_HEADER.size))
            pdu_type, _, length = PDU_HEADER.unpack(header)
            body = dul.socket.recv(length) if pdu_type == P_DATA_TF else b""
        except (OSError, struct.error):
            dul.event_queue.put("Evt17")  # connection closed (pynetdicom's READ_PDU_EXC)
            return
        if pdu_type != P_DATA_TF:
            # Release, abort or garbage: pynetdicom reads the rest itself.
            self._hand_back_all()
            self._hand_back_header(header, length)
            return
        if len(body) != length:
            dul.event_queue.put("Evt17")
            return
        self._p_data(header, body)

    def _plain_socket(self) -> bool:
        sock = getattr(self.dul.socket, "socket", None)
        return isinstance(sock, socket.socket) and not isinstance(sock, ssl.SSLSocket)

    def _p_data(self, header: bytes, body: bytearray) -> None:
        """A P-DATA-TF PDU; the whole PDU is put together again only for
        pynetdicom, a dataset's fragments stay where they were received."""
        if self.passing:
            self._pass(header + body, body)
            return
        items = _pdv_items(body)
        if items is None:
            self._invalid("malformed PDV item")
            return
        if self.request is not None:
            self._take_dataset(items)
            return
        for n, (context_id, control, fragment) in enumerate(items):
            if not control & 0x01:
                break  # a dataset before its command: pynetdicom's to judge
            self.command += fragment
            if not control & 0x02:
                continue
            values = command_values(bytes(self.command))
            request = self._store_request(values, context_id)
            if request is None and n == len(items) - 1 and self._store_response(values, context_id):
                self._reset()
                return
            if request is None:
                # Not ours: pynetdicom gets the message from its first PDU on,
                # and the PDUs after this one up to the end of its dataset.
                follows = values is None or _us(values, 0x0800) != NO_DATASET
                ended = any(c & 0x03 == 0x02 for _, c, _ in items[n + 1 :])
                self.passing = follows and not ended
                break
            self.request = request
            self.raw = []
            self._take_dataset(items[n + 1 :])
            return
        else:
            self.raw.append(header + body)  # the command continues in the next PDU
            return
        self.raw.append(header + body)
        self._hand_back_all()

    def _take_dataset(self, items: list[tuple[int, int, bytes]]) -> None:
        assert self.request is not None
        for n, (context_id, control, fragment) in enumerate(items):
            if control & 0x01 or context_id != self.request["context_id"]:
                self._invalid("unexpected PDV inside a C-STORE dataset")
                return
            self.dataset.append(fragment)
            if control & 0x02:
                if n != len(items) - 1:
                    self._invalid("PDVs after the last fragment of a C-STORE")
                    return
                self._answer()
                return

    def _store_request(self, values: dict[int, bytes] | None, context_id: int) -> dict | None:
        """The C-STORE-RQ this command starts, if the fast path takes it."""
        if values is None or _us(values, 0x0100) != C_STORE_RQ:
            return None
        if _us(values, 0x0800) in (None, NO_DATASET) or _us(values, 0x0110) is None:
            return None
        context = self.assoc._accepted_cx.get(context_id)
        if context is None or not context.transfer_syntax:
            return None
        abstract = str(context.abstract_syntax)
        if uid_to_service_class(abstract) is not StorageServiceClass:
            return None
        sop_class, sop_instance = _ui(values, 0x0002), _ui(values, 0x1000)
        if not sop_class or not sop_instance:
            return None
        return {
            "message_id": _us(values, 0x0110),
            "sop_class_uid": sop_class,
            "sop_instance_uid": sop_instance,
            "context_id": context_id,
            "context_sop_class_uid": abstract,
            "transfer_syntax_uid": str(context.transfer_syntax[0]),
        }

    def _store_response(self, values: dict[int, bytes] | None, context_id: int) -> bool:
        """Queue a C-STORE-RSP (a C-GET sub-operation's) for the waiting
        sender as pynetdicom's DIMSE layer would, without its decoding; only
        one that holds nothing but the elements every response has, so the
        primitive equals pynetdicom's. False: pynetdicom's to handle."""
        if (
            values is None
            or not values.keys() <= _PLAIN_RESPONSE
            or _us(values, 0x0100) != C_STORE_RSP
            or _us(values, 0x0800) != NO_DATASET
            or context_id not in self.assoc._accepted_cx
        ):
            return False
        message_id, status = _us(values, 0x0120), _us(values, 0x0900)
        if message_id is None or status is None:
            return False
        response = C_STORE()
        try:
            response.MessageIDBeingRespondedTo = message_id
            response.AffectedSOPClassUID = _ui(values, 0x0002)
            response.AffectedSOPInstanceUID = _ui(values, 0x1000)
            response.Status = status
        except (TypeError, ValueError):
            return False
        self.assoc.dimse.msg_queue.put((context_id, response))
        return True

    def _answer(self) -> None:
        assert self.request is not None
        request = Request(**self.request, dataset=self.dataset)
        self._reset()
        status, comment = self.store(self.assoc, request)
        command = response_command(request, status, comment)
        out = pdus(request.context_id, command, memoryview(b""), self.assoc.dimse.maximum_pdu_size)
        try:
            self.dul.socket.socket.sendall(b"".join(out))
        except OSError:
            self.dul.event_queue.put("Evt17")

    def _pass(self, pdu: bytes, body: bytes) -> None:
        """Hand over a PDU of a message pynetdicom is handling; notice its end."""
        self._hand_back(pdu)
        items = _pdv_items(body) or []
        if any(control & 0x03 == 0x02 for _, control, _ in items):  # last dataset fragment
            self.passing = False

    def _hand_back_all(self) -> None:
        for pdu in self.raw:
            self._hand_back(pdu)
        self._reset()

    def _hand_back(self, pdu: bytes) -> None:
        """What pynetdicom's _read_pdu_data does with a PDU it has read."""
        dul = self.dul
        try:
            decoded, event = dul._decode_pdu(bytearray(pdu))
        except Exception:
            log.exception("cannot decode a PDU from %s", self.assoc.requestor.address)
            dul.event_queue.put("Evt19")
            return
        dul.event_queue.put(event)
        dul._recv_pdu.put(decoded)

    def _hand_back_header(self, header: bytes, length: int) -> None:
        """A non-P-DATA PDU whose header we read: read its body the way
        pynetdicom would and hand over the whole."""
        try:
            body = bytes(self.dul.socket.recv(length)) if length else b""
        except OSError:
            self.dul.event_queue.put("Evt17")
            return
        if len(body) != length or header[0:1] not in b"\x01\x02\x03\x04\x05\x06\x07":
            self.dul.event_queue.put("Evt19" if len(body) == length else "Evt17")
            return
        self._hand_back(header + body)

    def _invalid(self, what: str) -> None:
        log.warning("%s from %s: aborting", what, self.assoc.requestor.address)
        self._reset()
        self.dul.event_queue.put("Evt19")
