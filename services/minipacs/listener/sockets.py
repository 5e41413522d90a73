"""How the listener reads from its peers: whole PDUs in few system calls, no
PDU longer than we negotiated (the read timeout on accepted sockets is in
listener/server.py)."""

from __future__ import annotations

from pynetdicom.transport import AssociationSocket

from minipacs.netio import read_exactly

# An A-ASSOCIATE-RQ proposing a hundred presentation contexts is a few tens of
# kilobytes; no PDU we accept needs more than this or PACS_MAX_PDU_SIZE.
MIN_PDU_LIMIT = 1 << 20

_original_recv = AssociationSocket.recv


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
