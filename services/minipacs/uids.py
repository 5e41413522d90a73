"""DICOM UID grammar (PS3.5 9.1): the only wire values that become paths."""

from __future__ import annotations

import re

_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


class InvalidUID(ValueError):
    """A value that should be a UID is not one."""


def is_valid_uid(value: str) -> bool:
    """True when `value` is a UID: dot-separated numeric components without
    leading zeros, at most 64 characters."""
    return 0 < len(value) <= 64 and _UID.fullmatch(value) is not None


def check_uid(value: object, what: str) -> str:
    """Return `value` (trailing NUL/space padding removed) if it is a UID,
    else raise InvalidUID naming `what`."""
    text = str(value).rstrip("\x00 ") if value is not None else ""
    if not is_valid_uid(text):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise InvalidUID(f"{what} {shown!r} is not a valid UID")
    return text


def encoded_uid(value: str) -> bytes:
    """A UI value as it goes on the wire: ASCII, padded with NUL to even
    length. A character that is not ASCII becomes `?`: such a value cannot
    match any UID, so no outcome changes."""
    raw = value.encode("ascii", "replace")
    return raw + b"\x00" if len(raw) % 2 else raw
