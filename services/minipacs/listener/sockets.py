"""Bounding what one peer can hold: a read timeout on every accepted socket."""

from __future__ import annotations

import socket
from typing import Any


def time_out_silent_peers(server: Any, timeout: float) -> None:
    """Give every socket the server accepts a read timeout of `timeout` s.

    pynetdicom sets its network timeout on the listening socket only; accepted
    sockets come back blocking with no timeout, so a peer that announces a PDU
    and then stops sending (a truncated or oversize PDU) holds its thread and
    an association slot forever, and enough of them lock everybody out. With a
    timeout the read fails after `timeout` seconds of silence and pynetdicom
    closes the connection.
    """
    accept = server.get_request

    def get_request() -> tuple[socket.socket, Any]:
        sock, address = accept()
        sock.settimeout(timeout)
        return sock, address

    server.get_request = get_request
