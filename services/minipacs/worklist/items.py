"""A worklist item as a user enters it (CLI flags or JSON import), validated
against the value representations of the attributes it becomes (PS3.5 6.2)."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, fields
from typing import Any

from minipacs.aetitle import AETitleError, check_ae_title
from minipacs.uids import is_valid_uid

SEXES = ("M", "F", "O")


class ItemError(ValueError):
    """An input value that cannot become a worklist attribute."""


@dataclass(frozen=True)
class NewItem:
    """The input names (snake_case of the CLI flags) of one Scheduled
    Procedure Step. Optional values are None; step id and study UID are filled
    in when stored if absent, requested procedure id defaults to the accession."""

    patient_id: str
    patient_name: str
    accession: str
    modality: str
    date: str
    birth_date: str | None = None
    sex: str | None = None
    station_ae: str | None = None
    time: str | None = None
    description: str | None = None
    requested_procedure_id: str | None = None
    step_id: str | None = None
    study_uid: str | None = None
    requesting_physician: str | None = None
    performing_physician: str | None = None


FIELD_NAMES = tuple(f.name for f in fields(NewItem))
REQUIRED = ("patient_id", "patient_name", "accession", "modality", "date")


def check_text(value: str, what: str, max_len: int) -> str:
    """LO/SH/CS-like text: no backslash (the value separator), no control
    characters, at most `max_len` characters once surrounding spaces go."""
    text = value.strip(" ")
    if "\\" in text or any(ord(c) < 32 for c in text):
        raise ItemError(f"{what} {value!r} contains a backslash or control character")
    if len(text) > max_len:
        raise ItemError(f"{what} {value!r} is longer than {max_len} characters")
    return text


def check_name(value: str, what: str) -> str:
    """PN: up to three component groups of at most 64 characters each."""
    text = value.strip(" ")
    if "\\" in text or any(ord(c) < 32 and c != "\x1b" for c in text):
        raise ItemError(f"{what} {value!r} contains a backslash or control character")
    for group in text.split("="):
        if len(group) > 64:
            raise ItemError(f"{what} {value!r} has a component group over 64 characters")
        if group.count("^") > 4:
            raise ItemError(f"{what} {value!r} has more than 5 components")
    return text


def check_date(value: str, what: str) -> str:
    """DA: YYYYMMDD, a real calendar date."""
    text = value.strip()
    try:
        if len(text) != 8 or not text.isdigit():
            raise ValueError
        datetime.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise ItemError(f"{what} {value!r} is not a date YYYYMMDD") from None
    return text


def check_time(value: str, what: str) -> str:
    """TM: HH, HHMM or HHMMSS with an optional .FFFFFF fraction; stored
    padded to HHMMSS so time ranges compare as text."""
    text = value.strip()
    main, dot, fraction = text.partition(".")
    ok = (
        len(main) in (2, 4, 6)
        and main.isdigit()
        and int(main[:2]) < 24
        and (len(main) < 4 or int(main[2:4]) < 60)
        and (len(main) < 6 or int(main[4:6]) < 60)
        and (not dot or (len(main) == 6 and 1 <= len(fraction) <= 6 and fraction.isdigit()))
    )
    if not ok:
        raise ItemError(f"{what} {value!r} is not a time HHMMSS")
    return main.ljust(6, "0") + (dot + fraction if dot else "")


def _optional(value: str | None, check: Any, *args: Any) -> str | None:
    if value is None or not value.strip():
        return None
    return check(value, *args)


def validate(item: NewItem) -> NewItem:
    """The item with every value checked and normalised; raises ItemError
    naming the first bad field."""
    for name in REQUIRED:
        value = getattr(item, name)
        if value is None or not str(value).strip():
            raise ItemError(f"{name} is required")
    sex = (item.sex or "").strip().upper() or None
    if sex is not None and sex not in SEXES:
        raise ItemError(f"sex {item.sex!r} is not one of {', '.join(SEXES)}")
    modality = check_text(item.modality, "modality", 16).upper()
    if not all(c.isalnum() or c in " _" for c in modality):
        raise ItemError(f"modality {item.modality!r} has characters not allowed in a code string")
    station = None
    if item.station_ae is not None and item.station_ae.strip():
        try:
            station = check_ae_title(item.station_ae)
        except AETitleError as exc:
            raise ItemError(f"station AE: {exc}") from None
    study_uid = _optional(item.study_uid, str.strip)
    if study_uid is not None and not is_valid_uid(study_uid):
        raise ItemError(f"study UID {item.study_uid!r} is not a valid DICOM UID")
    return NewItem(
        patient_id=check_text(item.patient_id, "patient id", 64),
        patient_name=check_name(item.patient_name, "patient name"),
        accession=check_text(item.accession, "accession number", 16),
        modality=modality,
        date=check_date(item.date, "date"),
        birth_date=_optional(item.birth_date, check_date, "birth date"),
        sex=sex,
        station_ae=station,
        time=_optional(item.time, check_time, "time"),
        description=_optional(item.description, check_text, "description", 64),
        requested_procedure_id=_optional(
            item.requested_procedure_id, check_text, "requested procedure id", 16
        ),
        step_id=_optional(item.step_id, check_text, "step id", 16),
        study_uid=study_uid,
        requesting_physician=_optional(
            item.requesting_physician, check_name, "requesting physician"
        ),
        performing_physician=_optional(
            item.performing_physician, check_name, "performing physician"
        ),
    )


def item_from_mapping(data: Any) -> NewItem:
    """A JSON object with the input names; unknown names and non-string
    values are refused rather than guessed at."""
    if not isinstance(data, dict):
        raise ItemError("an item must be a JSON object")
    unknown = sorted(set(data) - set(FIELD_NAMES))
    if unknown:
        raise ItemError(f"unknown field(s) {', '.join(unknown)}")
    for name, value in data.items():
        if value is not None and not isinstance(value, str):
            raise ItemError(f"{name} must be a string, not {type(value).__name__}")
    for name in REQUIRED:
        if not data.get(name):
            raise ItemError(f"{name} is required")
    return validate(NewItem(**data))


def parse_import(text: str) -> list[NewItem]:
    """Parse a JSON list of items; every item is validated before any is
    stored, and the first bad one is reported with its line in the file."""
    decoder = json.JSONDecoder()
    pos = _skip_space(text, 0)
    if pos >= len(text) or text[pos] != "[":
        raise ItemError("line 1: the file must hold a JSON list of objects")
    pos = _skip_space(text, pos + 1)
    items: list[NewItem] = []
    if pos < len(text) and text[pos] == "]":
        return _end(text, pos, items)
    while True:
        line = text.count("\n", 0, pos) + 1
        try:
            data, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise ItemError(f"line {exc.lineno}: invalid JSON: {exc.msg}") from None
        try:
            items.append(item_from_mapping(data))
        except ItemError as exc:
            raise ItemError(f"line {line}: item {len(items) + 1}: {exc}") from None
        pos = _skip_space(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_space(text, pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            return _end(text, pos, items)
        line = text.count("\n", 0, pos) + 1
        raise ItemError(f"line {line}: invalid JSON: expected ',' or ']'")


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _end(text: str, pos: int, items: list[NewItem]) -> list[NewItem]:
    rest = _skip_space(text, pos + 1)
    if rest != len(text):
        line = text.count("\n", 0, rest) + 1
        raise ItemError(f"line {line}: invalid JSON: extra data after the list")
    return items
