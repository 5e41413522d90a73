"""Sending a list of buffers in one go, as their concatenation would be sent."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from minipacs.netio import IOV_MAX, read_exactly, send_buffers


def _received_through_a_small_buffer(buffers: list[bytes | memoryview]) -> bytes:
    """What a peer reading slowly through small socket buffers receives,
    which forces sendmsg into partial sends."""
    ours, theirs = socket.socketpair()
    for sock in (ours, theirs):
        sock.settimeout(10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    total = sum(len(memoryview(b).cast("B")) for b in buffers)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(bytes(read_exactly(theirs, total))))
    reader.start()
    try:
        send_buffers(ours, buffers)
    finally:
        reader.join(10)
        ours.close()
        theirs.close()
    return received[0]


@pytest.mark.parametrize(
    "sizes",
    [[6, 6, 16378, 6, 16378, 0, 3], [1 << 20], [0], [7] * (IOV_MAX + 5), [1, 2, 100_000, 1]],
    ids=["pdus", "one big", "empty", "more than IOV_MAX", "uneven"],
)
def test_the_peer_receives_the_concatenation(sizes: list[int]) -> None:
    data = os.urandom(sum(sizes))
    buffers: list[bytes | memoryview] = []
    offset = 0
    for n, size in enumerate(sizes):
        piece = data[offset : offset + size]
        buffers.append(memoryview(piece) if n % 2 else piece)
        offset += size
    assert _received_through_a_small_buffer(buffers) == data
