"""DIMSE messages as pynetdicom encodes them into P-DATA-TF PDUs, for the
tests of our own readers of the wire."""

from __future__ import annotations

from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu import P_DATA_TF

CT = "1.2.840.10008.5.1.4.1.1.2"


def encode(message: object, context_id: int, max_pdu: int) -> list[bytes]:
    """A DIMSE message in P-DATA-TF PDUs of at most `max_pdu` bytes."""
    out = []
    for p_data in message.encode_msg(context_id, max_pdu):  # type: ignore[attr-defined]
        pdu = P_DATA_TF()
        pdu.from_primitive(p_data)
        out.append(pdu.encode())
    return out


def c_store_rsp(
    status: int,
    message_id: int,
    sop_instance_uid: str,
    *,
    context_id: int = 1,
    max_pdu: int = 16384,
    comment: str | None = None,
) -> list[bytes]:
    """A C-STORE-RSP for a CT instance, as pynetdicom's DIMSE layer sends it."""
    primitive = C_STORE()
    primitive.MessageIDBeingRespondedTo = message_id
    primitive.AffectedSOPClassUID = CT
    primitive.AffectedSOPInstanceUID = sop_instance_uid
    primitive.Status = status
    if comment:
        primitive.ErrorComment = comment
    message = C_STORE_RSP()
    message.primitive_to_message(primitive)
    return encode(message, context_id, max_pdu)
