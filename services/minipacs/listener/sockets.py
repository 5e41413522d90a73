"""Bounding what one peer can hold: no PDU longer than we negotiated (the read
timeout on accepted sockets is in listener/server.py)."""

from __future__ import annotations

from pynetdicom.transport import AssociationSocket

# An A-ASSOCIATE-RQ proposing a hundred presentation contexts is a few tens of
# kilobytes; no PDU we accept needs more than this or PACS_MAX_PDU_SIZE.
MIN_PDU_LIMIT = 1 << 20

_original_recv = AssociationSocket.recv


def refuse_oversize_pdus(max_pdu_size: int) -> None:
    """Drop a peer whose PDU header announces more than we can accept.

    pynetdicom reads a PDU's announced length (up to 4 GiB) into memory before
    looking at it, whatever maximum PDU length we negotiated: one connection
    streaming a "4 GiB" P-DATA-TF, even before associating, grows the listener
    by as much. The DUL reads the 6-byte header, then asks the socket for
    exactly the announced length; refusing that read makes pynetdicom close the
    connection (transport connection closed, PS3.8 9.2). Acceptor sockets only.
    `max_pdu_size` 0 (unlimited) keeps pynetdicom's behaviour.
    """
    if max_pdu_size == 0:
        AssociationSocket.recv = _original_recv  # type: ignore[method-assign]
        return
    limit = max(max_pdu_size, MIN_PDU_LIMIT)

    def recv(self: AssociationSocket, nr_bytes: int) -> bytearray:
        if nr_bytes > limit and self.assoc.is_acceptor:
            raise OSError(f"peer announced a {nr_bytes}-byte PDU, more than {limit} bytes")
        return _original_recv(self, nr_bytes)

    AssociationSocket.recv = recv  # type: ignore[method-assign]
