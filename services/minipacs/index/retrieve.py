"""Retrieve resolution for C-MOVE and C-GET: identifier in, instances out.

PS3.4 C.4.2.2.1 / C.4.3.2.1: a retrieve identifier carries the Query/Retrieve
Level and the unique keys of that level and the levels above it; the key of
the level itself may be a list of UIDs, and no wildcards or ranges are allowed.
The matching is pure (`retrieve_query`) so it is unit-tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from minipacs.uids import InvalidUID, check_uid

PATIENT_ROOT = "PATIENT"
STUDY_ROOT = "STUDY"

# Query/Retrieve Information Model UIDs (PS3.4 C.6) -> root.
MODELS = {
    "1.2.840.10008.5.1.4.1.2.1.2": PATIENT_ROOT,  # Patient Root MOVE
    "1.2.840.10008.5.1.4.1.2.1.3": PATIENT_ROOT,  # Patient Root GET
    "1.2.840.10008.5.1.4.1.2.2.2": STUDY_ROOT,  # Study Root MOVE
    "1.2.840.10008.5.1.4.1.2.2.3": STUDY_ROOT,  # Study Root GET
}

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")

# (level, identifier keyword, SQL column); each level's unique key (C.6.1.1 and C.6.2.1).
_KEYS = (
    ("PATIENT", "PatientID", "p.patient_id"),
    ("STUDY", "StudyInstanceUID", "st.study_instance_uid"),
    ("SERIES", "SeriesInstanceUID", "se.series_instance_uid"),
    ("IMAGE", "SOPInstanceUID", "i.sop_instance_uid"),
)

_SELECT = """
SELECT i.sop_instance_uid, i.sop_class_uid, i.transfer_syntax_uid, i.file_path
FROM instances i
JOIN series se ON se.id = i.series_fk
JOIN studies st ON st.id = se.study_fk
JOIN patients p ON p.id = st.patient_fk
WHERE {where}
ORDER BY st.id, se.series_number NULLS LAST, se.id, i.instance_number NULLS LAST, i.id
"""


class RetrieveKeyError(ValueError):
    """The identifier does not name what to retrieve (answered 0xA900)."""


@dataclass(frozen=True)
class RetrieveQuery:
    level: str
    sql: str
    params: tuple[list[str], ...]


@dataclass(frozen=True)
class MatchedInstance:
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    file_path: str  # relative to the storage root


def retrieve_query(identifier: Dataset, model_uid: str) -> RetrieveQuery:
    """Parameterised SQL selecting the instances an identifier names.

    - The level must be one the model has (Study Root has no PATIENT level).
    - The unique key of the level is required (C.4.2.2.1); keys of higher
      levels are applied when present (Patient Root names the patient).
    - UID keys may hold a list of UIDs (C.4.2.2.1 "List of UID matching");
      every value is checked against the UID grammar.
    - Wildcards are not allowed in unique keys (C.2.2.2.1).
    """
    root = MODELS.get(str(model_uid))
    if root is None:
        raise RetrieveKeyError(f"{model_uid} is not a supported retrieve model")
    level = _text(identifier.get("QueryRetrieveLevel")).upper()
    if level not in LEVELS or (root == STUDY_ROOT and level == "PATIENT"):
        raise RetrieveKeyError(f"QueryRetrieveLevel {level!r} is not valid for this model")

    depth = LEVELS.index(level)
    conditions: list[str] = []
    params: list[list[str]] = []
    for key_level, keyword, column in _KEYS[: depth + 1]:
        values = _values(identifier, keyword)
        if not values:
            if key_level == level:
                raise RetrieveKeyError(f"{keyword} is required at the {level} level")
            continue
        conditions.append(f"{column} = ANY(%s)")
        params.append(values)
    return RetrieveQuery(level, _SELECT.format(where=" AND ".join(conditions)), tuple(params))


def find_instances(conn: psycopg.Connection, query: RetrieveQuery) -> list[MatchedInstance]:
    rows = conn.execute(query.sql, query.params).fetchall()
    return [MatchedInstance(*row) for row in rows]


def _values(identifier: Dataset, keyword: str) -> list[str]:
    raw = identifier.get(keyword)
    if raw is None:
        return []
    items = list(raw) if isinstance(raw, MultiValue | list | tuple) else [raw]
    if len(items) == 1 and isinstance(items[0], str) and "\\" in items[0]:
        items = items[0].split("\\")
    values = [_text(v) for v in items]
    values = [v for v in values if v]
    for value in values:
        if "*" in value or "?" in value:
            raise RetrieveKeyError(f"{keyword} {value!r}: wildcards are not allowed")
        if keyword != "PatientID":
            try:
                check_uid(value, keyword)
            except InvalidUID as exc:
                raise RetrieveKeyError(str(exc)) from None
    if keyword == "PatientID" and len(values) > 1:
        raise RetrieveKeyError("PatientID must be a single value")
    return values


def _text(value: object) -> str:
    return "" if value is None else str(value).replace("\x00", "").strip(" ")
