"""Talking to DICOM peers: whole PDUs in few system calls, no copies."""

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


IOV_MAX = 1024  # buffers per sendmsg (Linux's limit)


def send_buffers(sock: socket.socket, buffers: list[bytes | memoryview]) -> None:
    """Send `buffers` in order, as sendall would send their concatenation,
    without building it (sendmsg gathers them: a 512 KiB image in 16 KiB PDUs
    is 64 buffers and one system call, no copy)."""
    views = [memoryview(buffer).cast("B") for buffer in buffers]
    first = 0
    while first < len(views):
        sent = sock.sendmsg(views[first : first + IOV_MAX])
        while first < len(views) and sent >= len(views[first]):
            sent -= len(views[first])
            first += 1
        if sent:
            views[first] = views[first][sent:]
