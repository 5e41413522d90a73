"""A fast encoder for the small, flat datasets a C-FIND answers with, producing
exactly the bytes pydicom's `write_dataset` produces.

pydicom encodes element by element through a buffer per element, charset
conversion per element and value validation: ~0.2 ms for a ten-key identifier,
half of the listener's time when a query returns thousands of matches. The
identifiers (and DIMSE command sets) we send are flat: text values, US/UL
numbers, empty sequences. `encode_dataset` writes those directly with
`struct` and falls back to pydicom, element by element or for the whole
dataset, for anything else, so its output is pydicom's in every case:

- any VR other than the text VRs, US, UL and SQ, a non-empty sequence, a
  RawDataElement (a decoded dataset), an undefined length: the whole dataset
  is encoded by pydicom (`None` is returned, the caller falls back);
- a text value that is not plain ASCII in a character set that leaves ASCII
  untouched, or a value of an unusual type (a date object, a PersonName
  decoded from bytes): that element is written by pydicom's own
  `write_data_element`, with the dataset's character set.

tests/unit/test_fastencode.py compares the bytes with pydicom's for implicit
and explicit VR, little and big endian.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache

from pydicom.charset import convert_encodings, default_encoding, encode_string, python_encoding
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.multival import MultiValue
from pydicom.uid import UID
from pydicom.valuerep import IS, DSdecimal, DSfloat, PersonName

# Text VRs written with the dataset's character set (pydicom's write_text/write_PN).
CHARSET_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})
# Text VRs written with pydicom's default encoding (write_string, write_UI,
# write_DA/DT/TM for str values, write_number_string).
PLAIN_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "UI", "UR", "DS", "IS"})
TEXT_VRS = CHARSET_VRS | PLAIN_VRS
# Explicit VR: these have 2 reserved bytes and a 4-byte length (PS3.5 7.1.2).
LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
NUMBER_FORMATS = {"US": "H", "UL": "L"}
_PROBE = "".join(chr(c) for c in range(128))


def encode_dataset(ds: Dataset, implicit_vr: bool, little_endian: bool) -> bytes | None:
    """The bytes pydicom's `write_dataset` writes for `ds`, or None when `ds`
    holds something this encoder leaves to pydicom (the caller then encodes
    the whole dataset with pydicom)."""
    order = "<" if little_endian else ">"
    charset = ds.get_item(0x00080005)
    if charset is not None and not isinstance(charset, DataElement):
        return None  # raw: decoded from the wire, pydicom re-encodes it
    encodings = _encodings(_charset_key(charset.value if charset is not None else None))
    ascii_transparent = encodings is not None and _ascii_transparent(encodings)
    parts: list[bytes] = []
    # In tag order; plain ints sort without BaseTag's Python-level __lt__.
    for tag, elem in sorted([(int(tag), elem) for tag, elem in ds.items()], key=_first):
        # pydicom drops retired group lengths (PS3.5 7.2), keeps (0000,0000)
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue
        if not isinstance(elem, DataElement) or elem.is_undefined_length:
            return None
        vr = elem.VR
        if vr in TEXT_VRS:
            value = _text(elem.value, vr, ascii_transparent or vr in PLAIN_VRS)
            if value is None:
                if encodings is None:
                    return None
                parts.append(_pydicom_element(elem, implicit_vr, little_endian, encodings))
                continue
            if len(value) % 2:
                value += b"\0" if vr == "UI" else b" "
        elif vr in NUMBER_FORMATS:
            value = _numbers(elem.value, order + NUMBER_FORMATS[vr])
        elif vr == "SQ" and not elem.value:
            value = b""
        else:
            return None
        if value is None:
            return None
        header = _header(tag, vr, len(value), implicit_vr, order)
        if header is None:
            return None
        parts.append(header)
        parts.append(value)
    return b"".join(parts)


def _first(pair: tuple[int, object]) -> int:
    return pair[0]


def _header(tag: int, vr: str, length: int, implicit_vr: bool, order: str) -> bytes | None:
    group_element = struct.pack(order + "HH", tag >> 16, tag & 0xFFFF)
    if implicit_vr:
        return group_element + struct.pack(order + "L", length)
    if vr in LONG_VRS:
        return group_element + vr.encode() + struct.pack(order + "HL", 0, length)
    if length > 0xFFFF:
        return None  # pydicom rewrites the VR as UN, with a warning
    return group_element + vr.encode() + struct.pack(order + "H", length)


def _text(value: object, vr: str, ascii_ok: bool) -> bytes | None:
    """The value as pydicom writes it when that is its plain ASCII text, else None."""
    if value is None or value == "":
        return b""
    values = value if isinstance(value, MultiValue) else (value,)
    texts = []
    for v in values:
        text = _plain_text(v, vr)
        if text is None:
            return None
        texts.append(text)
    joined = "\\".join(texts)
    if not ascii_ok or not joined.isascii():
        return None
    return joined.encode("ascii")


def _plain_text(value: object, vr: str) -> str | None:
    if type(value) is str or type(value) is UID:
        return value  # type: ignore[return-value]
    if type(value) is PersonName and vr == "PN" and value.original_string is None:
        # _encode_personname drops empty trailing component groups
        return "=".join(value.components).rstrip("=")
    if type(value) in (IS, DSfloat, DSdecimal) and vr in ("IS", "DS"):
        original = getattr(value, "original_string", None)
        return original if isinstance(original, str) else None
    return None


def _numbers(value: object, fmt: str) -> bytes | None:
    if value is None or value == "":
        return b""
    values = value if isinstance(value, MultiValue) else (value,)
    if not all(isinstance(v, int) for v in values):  # bool and IntEnum pack as pydicom's
        return None
    return struct.pack(fmt[0] + fmt[1] * len(values), *values)


def _pydicom_element(
    elem: DataElement, implicit_vr: bool, little_endian: bool, encodings: Sequence[str]
) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit_vr
    fp.is_little_endian = little_endian
    write_data_element(fp, elem, list(encodings))
    return fp.getvalue()


def _charset_key(value: object) -> tuple[str, ...] | None:
    """Specific Character Set as a hashable key; None for an absent one
    (pydicom then uses its default encoding)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(value)  # type: ignore[arg-type]


@lru_cache(maxsize=64)
def _encodings(charset: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """pydicom's Python encodings for a Specific Character Set, or None for a
    term pydicom does not know (it would warn and guess: leave it to pydicom)."""
    if charset is None:
        return tuple(convert_encodings(default_encoding))
    if any(term and term not in python_encoding for term in charset):
        return None
    return tuple(convert_encodings(list(charset)))


@lru_cache(maxsize=64)
def _ascii_transparent(encodings: tuple[str, ...]) -> bool:
    """True if pydicom writes any ASCII text as itself in these encodings
    (false for e.g. a leading ISO 2022 IR 87, which gets a trailing escape)."""
    try:
        return encode_string(_PROBE, list(encodings)) == _PROBE.encode("ascii")
    except (UnicodeError, LookupError):
        return False
