"""How the listener reads from its peers: whole PDUs in few system calls, no
PDU longer than we negotiated (the read timeout on accepted sockets is in
listener/server.py)."""

from __future__ import annotations

import socket

from pynetdicom.transport import AssociationSocket

# An A-ASSOCIATE-RQ proposing a hundred presentation contexts is a few tens of
# kilobytes; no PDU we accept needs more than this or PACS_MAX_PDU_SIZE.
MIN_PDU_LIMIT = 1 << 20

_original_recv = AssociationSocket.recv


def read_exactly(sock: socket.socket, nr_bytes: int) -> bytearray:
    """Read `nr_bytes` (fewer only if the peer closes the connection).

    pynetdicom's own AssociationSocket.recv reads 4 KiB per system call and
    appends each piece to the result: 128 calls and as many copies for a
    512 KiB image. This fills one buffer with as few calls as the kernel
    allows. After each read it asks for an immediate ACK (TCP_QUICKACK, which
    Linux clears by itself): a client that leaves Nagle's algorithm on, as
    DCMTK does unless TCP_NODELAY is set in its environment, otherwise holds
    the tail of every message until our delayed ACK (up to 40 ms) arrives.
    """
    buffer = bytearray(nr_bytes)
    view = memoryview(buffer)
    received = 0
    while received < nr_bytes:
        count = sock.recv_into(view[received:], nr_bytes - received)
        if not count:
            del view
            del buffer[received:]
            return buffer
        received += count
        _quickack(sock)
    return buffer


def _quickack(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    except (OSError, AttributeError):  # not TCP (tests' socketpairs), not Linux
        pass


def install(max_pdu_size: int) -> None:
    """Replace AssociationSocket.recv on this process's acceptor sockets with
    read_exactly, and drop a peer whose PDU header announces more than we can
    accept.

    pynetdicom reads a PDU's announced length (up to 4 GiB) into memory before
    looking at it, whatever maximum PDU length we negotiated: one connection
    streaming a "4 GiB" P-DATA-TF, even before associating, grows the listener
    by as much. The DUL reads the 6-byte header, then asks the socket for
    exactly the announced length; refusing that read makes pynetdicom close the
    connection (transport connection closed, PS3.8 9.2). `max_pdu_size` 0
    (unlimited) lifts the limit.
    """
    limit = max(max_pdu_size, MIN_PDU_LIMIT) if max_pdu_size else None

    def recv(self: AssociationSocket, nr_bytes: int) -> bytearray:
        if not self.assoc.is_acceptor:
            return _original_recv(self, nr_bytes)
        if limit is not None and nr_bytes > limit:
            raise OSError(f"peer announced a {nr_bytes}-byte PDU, more than {limit} bytes")
        return read_exactly(self.socket, nr_bytes)

    AssociationSocket.recv = recv  # type: ignore[method-assign]
