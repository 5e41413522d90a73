"""Fast paths under pynetdicom for large C-FIND answers, installed once at
listener start by `install()`.

Why: a query that returns 10,000 identifiers sends 10,000 C-FIND-RSP
messages. For each, pynetdicom encodes the identifier with pydicom's general
writer, builds a DIMSE message whose command set it encodes twice (once for
the group length, once to send), and formats DEBUG lines for the message,
the identifier and every PDU: ~90% of the listener's time, ~0.6 ms per match.
What this module changes, each step leaving pynetdicom's behaviour (statuses,
C-CANCEL, failures, the bytes of every message) as it was:

1. `fast_encode` replaces the module-level `encode` name that pynetdicom's
   `service_class` (response identifiers) and `dimse_messages` (command
   sets) call: `minipacs.fastencode` writes flat datasets of text, US and UL
   values byte-for-byte as pydicom would; anything else goes to pynetdicom's
   own `dsutils.encode` unchanged (deflate included).
2. `send_msg` replaces `DIMSEServiceProvider.send_msg` for one case only: a
   C-FIND response while nothing is bound to EVT_DIMSE_SENT. Within a request
   every pending response has the same command set, so it is built and
   encoded once by pynetdicom's own C_FIND_RSP message and reused. Command
   and identifier travel as two PDVs of one P-DATA-TF PDU when they fit the
   peer's maximum PDU length (as dcm4che sends them), else fragmented exactly
   as `DIMSEMessage.encode_msg` fragments them. Everything else takes
   pynetdicom's path.
3. Below PACS_LOG_LEVEL=DEBUG, logs.configure() silences pynetdicom under
   WARNING, so its per-message DEBUG output is unseen: pynetdicom's documented
   switches `_config.LOG_HANDLER_LEVEL = "none"` and
   `LOG_RESPONSE_IDENTIFIERS = False` stop it being formatted at all (at
   DEBUG both stay on, and step 2 steps aside because a handler is bound).

tests/unit/test_fastpath.py checks steps 1 and 2 against pynetdicom's output.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from pydicom.dataset import Dataset
from pynetdicom import _config, dimse_messages, dsutils, evt, service_class
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_messages import C_FIND_RSP, DIMSEMessage
from pynetdicom.dimse_primitives import C_FIND
from pynetdicom.pdu_primitives import P_DATA

from minipacs import reactors
from minipacs.fastencode import encode_dataset

_pynetdicom_encode = dsutils.encode
_pynetdicom_send_msg = DIMSEServiceProvider.send_msg
# The C-FIND-RSP command elements a primitive fills, OffendingElement aside
# (its responses take pynetdicom's path); the others are derived from them.
# tests/unit/test_fastpath.py fails if a pynetdicom upgrade adds one.
_RSP_KEYWORDS = ("AffectedSOPClassUID", "MessageIDBeingRespondedTo", "Status", "ErrorComment")
_COMMANDS_CACHED = 256
_commands: dict[tuple, bytes] = {}


# A full queue drains in microseconds; the deadline only guards a dead DUL.
_DUL_WAIT_SECONDS = 5.0
_DUL_WAIT_STEP = 0.0001
_DUL_DRAIN_EVERY = 8
STREAM_LINGER_SECONDS = 0.02  # after a C-FIND response: more are likely to follow


def fast_encode(
    ds: Dataset, is_implicit_vr: bool, is_little_endian: bool, deflated: bool = False
) -> bytes | None:
    """`pynetdicom.dsutils.encode` with a fast path: same signature, same bytes,
    same None on failure (pynetdicom answers 0xC312 / aborts on None)."""
    if not deflated:
        try:
            encoded = encode_dataset(ds, is_implicit_vr, is_little_endian)
        except Exception:  # noqa: BLE001 - the reference encoder decides (and logs) below
            encoded = None
        if encoded is not None:
            return encoded
    return _pynetdicom_encode(ds, is_implicit_vr, is_little_endian, deflated)


def send_msg(self: DIMSEServiceProvider, primitive: object, context_id: int) -> None:
    """`DIMSEServiceProvider.send_msg` with C-FIND responses sent from a cached
    command set; any other message, or any observer of EVT_DIMSE_SENT (which
    expects the message object), takes pynetdicom's own path."""
    if (
        type(primitive) is not C_FIND
        or primitive.MessageIDBeingRespondedTo is None
        or primitive.OffendingElement is not None
        or self.assoc.get_handlers(evt.EVT_DIMSE_SENT)
    ):
        _pynetdicom_send_msg(self, primitive, context_id)  # type: ignore[arg-type]
        return
    identifier = primitive.Identifier
    command = find_rsp_command(primitive)
    data = identifier.getvalue() if identifier is not None else b""
    _wait_for_dul(self.dul)
    reactors.linger(self.dul, STREAM_LINGER_SECONDS)
    for pdata in p_data(context_id, command, data, self.maximum_pdu_size):
        self.dul.send_pdu(pdata)


def _wait_for_dul(dul: object) -> None:
    """Every _DUL_DRAIN_EVERY responses, let the DUL thread empty its send
    queue before the next one goes in. Each pass of its loop either sends one
    queued PDU or reads the socket, and it reads only when nothing is queued:
    responses queued faster than it sends would keep a C-CANCEL unread until
    the whole answer was out. Draining now and then bounds that to a few
    responses without paying a wait on every one."""
    queue = dul.to_provider_queue
    if queue.qsize() < _DUL_DRAIN_EVERY:
        return
    deadline = time.monotonic() + _DUL_WAIT_SECONDS
    while not queue.empty() and time.monotonic() < deadline:
        time.sleep(_DUL_WAIT_STEP)


def find_rsp_command(primitive: C_FIND) -> bytes:
    """The encoded command set of a C-FIND response, as pynetdicom's
    C_FIND_RSP message encodes it, cached by the values it depends on."""
    key = (
        *(getattr(primitive, keyword) for keyword in _RSP_KEYWORDS),
        primitive.Identifier is not None,  # CommandDataSetType 0x0001 / 0x0101
    )
    command = _commands.get(key)
    if command is None:
        message = C_FIND_RSP()
        message.primitive_to_message(primitive)
        command = dimse_messages.encode(message.command_set, True, True)
        if len(_commands) >= _COMMANDS_CACHED:
            _commands.clear()  # keys carry the message ID: old ones are dead
        _commands[key] = command
    return command


def p_data(context_id: int, command: bytes, data: bytes, max_pdu: int) -> Iterator[P_DATA]:
    """P-DATA primitives for a command set and its data set (PS3.8 E.2
    control header: bit 0 command, bit 1 last fragment). When both fit in
    one PDU of the peer's maximum length, they go as two PDVs of one
    P-DATA-TF (PS3.8 9.3.5: "one or more" PDV items), halving the PDUs each
    side handles; otherwise each is cut as `DIMSEMessage.encode_msg` cuts it."""
    # A PDV item is 4 length + 1 context ID + 1 control header + fragment.
    if max_pdu == 0 or len(command) + 6 + (len(data) + 6 if data else 0) <= max_pdu:
        pdata = P_DATA()
        pdata.presentation_data_value_list.append((context_id, b"\x03" + command))
        if data:
            pdata.presentation_data_value_list.append((context_id, b"\x02" + data))
        yield pdata
        return
    for payload, more, last in ((command, b"\x01", b"\x03"), (data, b"\x00", b"\x02")):
        if not payload:
            continue  # no data set: command only
        fragments = list(DIMSEMessage._generate_pdv_fragments(payload, max_pdu))
        for index, fragment in enumerate(fragments):
            pdata = P_DATA()
            header = last if index == len(fragments) - 1 else more
            pdata.presentation_data_value_list.append((context_id, header + fragment))
            yield pdata


def install(log_level: str) -> None:
    """Apply the three steps of the module docstring. Idempotent; call once
    at listener start, before the first association."""
    service_class.encode = fast_encode  # type: ignore[attr-defined]
    dimse_messages.encode = fast_encode  # type: ignore[attr-defined]
    DIMSEServiceProvider.send_msg = send_msg  # type: ignore[method-assign]
    if log_level != "DEBUG":
        _config.LOG_HANDLER_LEVEL = "none"
        _config.LOG_RESPONSE_IDENTIFIERS = False
