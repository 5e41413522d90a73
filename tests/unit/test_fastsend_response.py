"""The sender reads C-STORE responses off the socket itself: the command set
is reassembled from P-DATA-TF PDUs as pynetdicom would encode them, and
anything that is not a matching C-STORE-RSP gives no status."""

from __future__ import annotations

import socket

import pytest
from pynetdicom.pdu import A_ABORT_RQ

from minipacs.sender import fastsend
from tests.unit.dimse_pdus import c_store_rsp


def rsp_pdus(status: int, message_id: int, max_pdu: int, comment: str | None = None) -> bytes:
    """A C-STORE-RSP as pynetdicom's DIMSE layer sends it, in PDUs of `max_pdu`."""
    return b"".join(c_store_rsp(status, message_id, "1.2.3.4.5", max_pdu=max_pdu, comment=comment))


def read(data: bytes, message_id: int) -> int | None:
    ours, peer = socket.socketpair()
    with ours, peer:
        peer.sendall(data)
        peer.shutdown(socket.SHUT_WR)
        ours.settimeout(5)
        return fastsend.response_status(fastsend.read_command(ours), message_id)


@pytest.mark.parametrize("max_pdu", [0, 16384, 64, 20])
@pytest.mark.parametrize("status", [0x0000, 0xA700, 0xB000, 0xC000])
def test_status_of_a_matching_response(max_pdu: int, status: int) -> None:
    assert read(rsp_pdus(status, 7, max_pdu, comment="disk full"), 7) == status


def test_a_response_to_another_message_gives_no_status() -> None:
    assert read(rsp_pdus(0, 8, 16384), 7) is None


def test_an_abort_gives_no_status() -> None:
    abort = A_ABORT_RQ()
    abort.source, abort.reason_diagnostic = 0x02, 0x00
    assert read(abort.encode(), 1) is None


def test_a_connection_closed_midway_gives_no_status() -> None:
    assert read(rsp_pdus(0, 1, 16384)[:-3], 1) is None
    assert read(b"", 1) is None
