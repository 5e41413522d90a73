"""A C-STORE request written straight to the socket.

pynetdicom hands every PDU to its DUL thread through a queue and a state
machine, and encodes the command set with pydicom: per 512 KB image sent in
16 KB PDUs that is ~35 thread hand-offs and as many small `send` calls, which
caps a sub-operation stream at a fraction of what the network carries. Here
the command set is encoded by hand (PS3.7 9.3.1.1, Implicit VR Little
Endian), the dataset is read from the Part 10 file as stored, and the P-DATA-TF
PDUs (PS3.8 9.3.5) for both go out in one `sendall`. On the sender's own
associations the response is read from the socket here too, while
pynetdicom's DUL thread is parked (reactors.hold_dul): its state machine
never sees the exchange, which leaves it where it was (P-DATA keeps Sta6).
On C-GET (acceptor side) the DUL keeps reading, as the requestor may send a
C-CANCEL, and the response is taken from pynetdicom's DIMSE queue.

Used only when the file's own transfer syntax was accepted and the socket is
plain TCP; everything else goes through pynetdicom's `send_c_store`.
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import struct
import time
from pathlib import Path

from pynetdicom.association import Association

from minipacs import reactors
from minipacs.netio import read_exactly, send_buffers
from minipacs.uids import encoded_uid

log = logging.getLogger(__name__)

PDU_HEADER = struct.Struct(">BBI")  # type 0x04, reserved, length
PDV_HEADER = struct.Struct(">IBB")  # item length, context id, message control header
C_STORE_RQ, C_STORE_RSP = 0x0001, 0x8001
MAX_RESPONSE_PDU = 1 << 20  # a C-STORE-RSP is a few hundred bytes
NO_DATASET, DATASET_PRESENT = 0x0101, 0x0000
REACTOR_LOOP_BACK_SECONDS = 0.003


class NotApplicable(Exception):
    """The fast path cannot send this; use pynetdicom's."""


def dataset_offset(data: bytes) -> int:
    """Where the dataset starts in a Part 10 file: after the 128-byte
    preamble, `DICM` and the file meta group, whose first element is its
    group length (0002,0000) UL in Explicit VR Little Endian."""
    if data[128:132] != b"DICM" or data[132:136] != b"\x02\x00\x00\x00" or data[136:138] != b"UL":
        raise NotApplicable("no file meta group length")
    (group_length,) = struct.unpack_from("<I", data, 140)
    return 144 + group_length


def command_element(element: int, value: bytes) -> bytes:
    """A command set element (group 0000, Implicit VR Little Endian)."""
    return struct.pack("<HHI", 0x0000, element, len(value)) + value


def command_group(elements: list[bytes]) -> bytes:
    """The elements (in tag order) behind their group length."""
    payload = b"".join(elements)
    return command_element(0x0000, struct.pack("<I", len(payload))) + payload


def command_values(command: bytes) -> dict[int, bytes] | None:
    """Element number -> raw value of a group 0000 command set; None when it
    does not parse."""
    values: dict[int, bytes] = {}
    offset = 0
    while offset + 8 <= len(command):
        group, element, length = struct.unpack_from("<HHI", command, offset)
        if group != 0 or offset + 8 + length > len(command):
            return None
        values[element] = command[offset + 8 : offset + 8 + length]
        offset += 8 + length
    return values if offset == len(command) else None


def command_set(
    sop_class: str,
    sop_instance: str,
    msg_id: int,
    originator_aet: str | None = None,
    originator_id: int | None = None,
    priority: int = 0x0002,
) -> bytes:
    """C-STORE-RQ command set (PS3.7 table 9.3-1), elements in tag order."""
    body = [
        command_element(0x0002, encoded_uid(sop_class)),
        command_element(0x0100, struct.pack("<H", C_STORE_RQ)),
        command_element(0x0110, struct.pack("<H", msg_id)),
        command_element(0x0700, struct.pack("<H", priority)),
        command_element(0x0800, struct.pack("<H", DATASET_PRESENT)),
        command_element(0x1000, encoded_uid(sop_instance)),
    ]
    if originator_aet:
        body.append(command_element(0x1030, originator_aet.encode("ascii")[:16].ljust(16)))
    if originator_id is not None:
        body.append(command_element(0x1031, struct.pack("<H", originator_id)))
    return command_group(body)


def pdus(context_id: int, command: bytes, dataset: memoryview, max_pdu: int) -> list[bytes]:
    """P-DATA-TF PDUs, one PDV each: the command (last fragment bit set,
    command bit set) then the dataset in fragments that fit `max_pdu`."""
    out: list[bytes] = []
    room = (max_pdu - 6) if max_pdu else max(len(command), len(dataset)) + 1

    def add(chunk: bytes | memoryview, control: int) -> None:
        item = PDV_HEADER.pack(len(chunk) + 2, context_id, control)
        out.append(PDU_HEADER.pack(0x04, 0, len(item) + len(chunk)) + item)
        out.append(chunk)

    for start in range(0, len(command), room):
        last = start + room >= len(command)
        add(command[start : start + room], 0x03 if last else 0x01)
    for start in range(0, len(dataset), room):
        last = start + room >= len(dataset)
        add(dataset[start : start + room], 0x02 if last else 0x00)
    return out


def fast_store(
    assoc: Association,
    path: Path,
    context_id: int,
    sop_class: str,
    sop_instance: str,
    msg_id: int,
    originator_aet: str | None = None,
    originator_id: int | None = None,
) -> int | None:
    """Send one C-STORE-RQ; the response status, None if none came back."""
    sock = getattr(assoc.dul.socket, "socket", None)
    if sock is None or isinstance(sock, ssl.SSLSocket):
        raise NotApplicable("no plain TCP socket")
    data = path.read_bytes()
    view = memoryview(data)[dataset_offset(data) :]
    command = command_set(sop_class, sop_instance, msg_id, originator_aet, originator_id)
    parts = pdus(context_id, command, view, assoc.dimse.maximum_pdu_size)

    hold_reactor(assoc)
    # A requestor (the sender) reads its responses from the socket itself;
    # on C-GET the DUL keeps the socket, as a C-CANCEL may come in.
    direct = assoc.is_requestor and reactors.hold_dul(assoc)
    send_buffers(sock, parts)
    if direct:
        return _read_response(assoc, sock, msg_id)
    return _response_status(assoc)


def hold_reactor(assoc: Association) -> None:
    """Keep pynetdicom's association reactor from taking our C-STORE
    responses off the DIMSE queue (it serves incoming requests from there).

    On the acceptor side (C-GET) we run inside the reactor thread: nothing to
    do. On the requestor side the reactor is parked at its checkpoint for the
    rest of the association. The flag it raises before parking can be seen
    just after it passed the checkpoint, so wait until it is raised, give the
    thread time to loop back (one pass sleeps 1 ms), and check again: then it
    is parked.
    `release_reactor` (or pynetdicom's own send/release) lets it go.
    """
    if assoc.is_acceptor or not assoc._reactor_checkpoint.is_set():
        return
    assoc._reactor_checkpoint.clear()
    for _ in range(2):
        deadline = time.monotonic() + 5
        while not assoc._is_paused and time.monotonic() < deadline:
            time.sleep(0.0001)
        time.sleep(REACTOR_LOOP_BACK_SECONDS)


def release_reactor(assoc: Association) -> None:
    """Give the association back to pynetdicom's threads."""
    reactors.release_dul(assoc)
    assoc._reactor_checkpoint.set()


def _read_response(assoc: Association, sock: socket.socket, msg_id: int) -> int | None:
    """The C-STORE-RSP status, read from the socket while the DUL is parked.
    Anything else (an A-ABORT, a malformed PDU, no data for the DIMSE timeout)
    aborts the association: None."""
    status = None
    try:
        previous = sock.gettimeout()
        sock.settimeout(assoc.dimse.dimse_timeout or None)
        try:
            status = response_status(read_command(sock), msg_id)
        finally:
            sock.settimeout(previous)
    except (OSError, struct.error):
        pass
    if status is None:
        log.warning("no usable C-STORE response to message %d; aborting", msg_id)
        reactors.release_dul(assoc)
        if assoc.is_established:
            assoc.abort()
    return status


def read_command(sock: socket.socket) -> bytes | None:
    """The command set of the next DIMSE message: P-DATA-TF PDUs up to its
    last command fragment (PS3.8 9.3.5, E.2); None for any other PDU, a
    dataset fragment or a connection closed midway."""
    command = bytearray()
    while True:
        header = read_exactly(sock, PDU_HEADER.size)
        if len(header) < PDU_HEADER.size:
            return None
        pdu_type, _, length = PDU_HEADER.unpack(header)
        if pdu_type != 0x04 or length > MAX_RESPONSE_PDU:
            return None
        body = read_exactly(sock, length)
        if len(body) < length:
            return None
        offset = 0
        while offset + PDV_HEADER.size <= length:
            item_length, _context, control = PDV_HEADER.unpack_from(body, offset)
            if not control & 0x01 or item_length < 2:
                return None
            command += body[offset + PDV_HEADER.size : offset + 4 + item_length]
            offset += 4 + item_length
            if control & 0x02:
                return bytes(command)


def response_status(command: bytes | None, msg_id: int) -> int | None:
    """Status (0000,0900) of a C-STORE-RSP command set (Implicit VR Little
    Endian) answering `msg_id`; None for anything else."""
    values = command_values(command) if command is not None else None
    if (
        values is None
        or values.get(0x0100) != struct.pack("<H", C_STORE_RSP)
        or values.get(0x0120) != struct.pack("<H", msg_id)
        or len(values.get(0x0900, b"")) != 2
    ):
        return None
    return struct.unpack("<H", values[0x0900])[0]


def _response_status(assoc: Association) -> int | None:
    """Wait for the C-STORE response, giving up early if the peer aborted."""
    limit = assoc.dimse.dimse_timeout
    deadline = time.monotonic() + (limit if limit else 24 * 3600)
    while True:
        try:
            _cx, rsp = assoc.dimse.msg_queue.get(timeout=0.5)
            break
        except queue.Empty:
            if time.monotonic() > deadline or assoc.acse.is_aborted() or not assoc.dul.is_alive():
                if assoc.is_established:
                    assoc.abort()
                return None
    status = getattr(rsp, "Status", None)
    return int(status) if status is not None else None
