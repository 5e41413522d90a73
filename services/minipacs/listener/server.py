"""The association server: pynetdicom's, tuned for an archive."""

from __future__ import annotations

import socket
import threading

from pynetdicom import AE, evt
from pynetdicom.events import Event
from pynetdicom.transport import ThreadedAssociationServer

from minipacs import reactors


class ArchiveServer(ThreadedAssociationServer):
    """pynetdicom's threaded server with three socket options it never sets:

    - SO_REUSEPORT, so several listener processes share one port and the
      kernel spreads associations over them (one Python process is one core);
    - TCP_NODELAY on every accepted connection, so responses and C-GET
      sub-operations are not held back by Nagle's algorithm waiting for the
      peer's delayed ACK (~40 ms each);
    - a read timeout (the AE's network timeout) on every accepted connection:
      pynetdicom sets it on the listening socket only, so a peer that
      announces a PDU and then stops sending would hold its thread and an
      association slot forever.
    """

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        client, address = super().get_request()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.settimeout(self.ae.network_timeout)
        return client, address


def _on_conn_open(event: Event) -> None:
    reactors.prepare(event.assoc)


def _on_conn_close(event: Event) -> None:
    reactors.release(event.assoc)


def start(ae: AE, address: tuple[str, int], handlers: list, ssl_context=None) -> ArchiveServer:
    """Start serving in a background thread, as `AE.start_server(block=False)` does."""
    reactors.install()
    server = ae.make_server(
        address,
        evt_handlers=[
            (evt.EVT_CONN_OPEN, _on_conn_open),
            (evt.EVT_CONN_CLOSE, _on_conn_close),
            *handlers,
        ],
        ssl_context=ssl_context,
        server_class=ArchiveServer,
    )
    threading.Thread(target=server.serve_forever, name="association-server", daemon=True).start()
    ae._servers.append(server)  # as start_server does, so server.shutdown() can unregister it
    return server
