"""Reading from DICOM peers: whole PDUs in few system calls."""

from __future__ import annotations

import socket


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
