"""The association server: pynetdicom's, tuned for an archive."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.events import Event
from pynetdicom.transport import ThreadedAssociationServer

from minipacs import reactors

# Set by the supervisor of several listener processes (supervisor.py): the
# number of the listening socket it shares with them.
LISTEN_FD_VARIABLE = "MINIPACS_LISTEN_FD"
ACCEPT_DEFER_SECONDS = 0.002  # per association a process is already serving
RECENT_ACCEPT_SECONDS = 0.05


def inherited_listener() -> socket.socket | None:
    """The listening socket a supervisor handed this process, if any."""
    fd = os.environ.get(LISTEN_FD_VARIABLE)
    return socket.socket(fileno=int(fd)) if fd else None


class ArchiveServer(ThreadedAssociationServer):
    """pynetdicom's threaded server, serving a socket inherited from the
    supervisor when there is one, with socket options it never sets:

    - SO_REUSEPORT when it binds its own socket, so that separately started
      listeners may share a port;
    - TCP_NODELAY on every accepted connection, so responses and C-GET
      sub-operations are not held back by Nagle's algorithm waiting for the
      peer's delayed ACK (~40 ms each);
    - a read timeout (the AE's network timeout) on every accepted connection:
      pynetdicom sets it on the listening socket only, so a peer that
      announces a PDU and then stops sending would hold its thread and an
      association slot forever.
    """

    def __init__(self, *args: Any, listening: socket.socket | None = None, **kwargs: Any):
        self.listening = listening
        self.last_accept = 0.0
        super().__init__(*args, **kwargs)

    def server_bind(self) -> None:
        if self.listening is None:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            super().server_bind()
            return
        # Every process of the supervisor waits on this one socket and the
        # first free to accept takes the association: a busy process leaves it
        # to an idle one (SO_REUSEPORT would hash it to either). Non-blocking:
        # the others get EAGAIN rather than waiting in accept().
        self.socket.close()
        self.socket = self.listening
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        if self.listening is None:
            super().server_activate()

    def server_close(self) -> None:
        if self.listening is None:
            super().server_close()
        else:
            self.socket.close()  # no shutdown(): the other processes still serve it

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        if self.listening is not None:
            # Every process is woken by a new connection; one already serving
            # associations (or that has just accepted one, whose thread may
            # not run yet) lets a less busy one take it first.
            busy = len(self.active_associations)
            busy += time.monotonic() - self.last_accept < RECENT_ACCEPT_SECONDS
            if busy:
                time.sleep(min(busy, 10) * ACCEPT_DEFER_SECONDS)
        client, address = super().get_request()
        self.last_accept = time.monotonic()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.settimeout(self.ae.network_timeout)
        return client, address


def _on_conn_open(event: Event) -> None:
    reactors.prepare(event.assoc)


def _on_conn_close(event: Event) -> None:
    reactors.release(event.assoc)


def start(ae: AE, address: tuple[str, int], handlers: list, ssl_context=None) -> ArchiveServer:
    """Start serving in a background thread, as `AE.start_server(block=False)`
    does; on the supervisor's socket when it handed one down."""
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
        listening=inherited_listener(),
    )
    threading.Thread(target=server.serve_forever, name="association-server", daemon=True).start()
    ae._servers.append(server)  # as start_server does, so server.shutdown() can unregister it
    return server
