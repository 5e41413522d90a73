"""C-FIND responses (PS3.4 C.4.1.1.3): one identifier per matching row with
exactly the keys asked for plus the unique keys, in a character set that can
carry every value."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import psycopg_pool
from pydicom.charset import _encode_string_impl, python_encoding
from pydicom.dataset import Dataset

from minipacs.index.matching import FindQuery, MatchOptions, compile_find
from minipacs.index.query import stream_matches

UTF8 = "ISO_IR 192"
DEFAULT_REPERTOIRE = ("", "ISO_IR 6", "ISO 2022 IR 6")


def find(
    pool: psycopg_pool.ConnectionPool,
    identifier: Dataset,
    model: str,
    options: MatchOptions,
    max_results: int,
) -> tuple[FindQuery, Iterator[Dataset]]:
    """Compile the identifier (raising IdentifierError before any database
    work) and return the query with a lazy stream of response identifiers."""
    query = compile_find(identifier, model, options)
    request_charset = _charset_list(identifier)
    rows = stream_matches(pool, query, max_results)
    return query, (build_response(query, row, request_charset) for row in rows)


def build_response(query: FindQuery, row: Sequence[Any], request_charset: list[str]) -> Dataset:
    ds = Dataset()
    texts: list[str] = []
    for key in query.keys:
        if key.index is not None:
            value = row[key.index]
        else:
            value = key.constant
        if value is None:
            text = ""
        elif isinstance(value, int):
            text = str(value)
        else:
            text = value
        if text:
            texts.append(text)
        if key.vr == "SQ":
            ds.add_new(key.tag, "SQ", [])
        else:
            ds.add_new(key.tag, key.vr, text or None)  # None: zero length in any VR
    charset = response_charset(texts, request_charset)
    if charset:
        ds.SpecificCharacterSet = charset if len(charset) > 1 else charset[0]
    return ds


def _charset_list(identifier: Dataset) -> list[str]:
    raw = identifier.get("SpecificCharacterSet")
    if not raw:
        return []
    if isinstance(raw, str):
        return [raw]
    return [str(v) for v in raw]


def response_charset(texts: list[str], request_charset: list[str]) -> list[str]:
    """PS3.5 6.1: the request's own character set when it can encode every
    value (so the SCU reads its own script back), else UTF-8. Pure ASCII
    needs none, but echoing the request's keeps SCUs that expect it happy."""
    known = all(
        t.strip() in DEFAULT_REPERTOIRE or t.strip() in python_encoding for t in request_charset
    )
    if all(t.isascii() for t in texts):
        return request_charset if known else []
    if request_charset and _can_encode(texts, request_charset):
        return request_charset
    return [UTF8]


def _can_encode(texts: list[str], charset: list[str]) -> bool:
    """True if every character of every value is in one of the character
    sets (pydicom switches between ISO 2022 sets within a value)."""
    # pydicom reads the default repertoire as Latin-1; DICOM means ASCII.
    terms = [term.strip() for term in charset]
    if any(t not in DEFAULT_REPERTOIRE and t not in python_encoding for t in terms):
        return False  # a character set we do not know: answer in UTF-8
    encodings = ["ascii" if t in DEFAULT_REPERTOIRE else python_encoding[t] for t in terms]
    for ch in {c for t in texts for c in t if not c.isascii()}:
        for encoding in encodings:
            try:
                _encode_string_impl(ch, encoding)
                break
            except (UnicodeError, LookupError):
                continue
        else:
            return False
    return True
