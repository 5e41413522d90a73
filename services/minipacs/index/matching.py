"""C-FIND matching: a query identifier in, one parameterised SELECT out.

Pure (no database, no network). Each rule cites its PS3.4 C.2.2.2 clause.
Values never reach the SQL text: every one is a bind parameter, and LIKE
patterns escape `%`, `_` and `\\` so they match literally (C.2.2.2.4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from minipacs.index.attributes import (
    ATTRIBUTES,
    FROM,
    MODELS,
    UNIQUE_KEYS,
    Attribute,
    level_rank,
)

# Elements of an identifier that are not keys (PS3.4 C.4.1.1.3.1).
NOT_KEYS = {"QueryRetrieveLevel", "SpecificCharacterSet", "TimezoneOffsetFromUTC"}

_DA = re.compile(r"\d{8}")
_TM = re.compile(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?")
_DT = re.compile(r"\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?")
# Upper bounds are padded with these so "17" includes 17:59:59.999999.
_UPPER_PAD = {"TM": "235959.999999", "DT": "99991231235959.999999"}
_PATTERN = {"DA": _DA, "TM": _TM, "DT": _DT}


class IdentifierError(ValueError):
    """The identifier cannot be answered: `invalid_level` tells a missing or
    wrong QueryRetrieveLevel or a key outside the level (0xA900) from a
    malformed value (0xC000)."""

    def __init__(self, message: str, *, invalid_level: bool = False) -> None:
        super().__init__(message)
        self.invalid_level = invalid_level


@dataclass(frozen=True)
class ReturnKey:
    """One attribute of every response: from column `index` of the row, a
    constant, or empty when the index does not hold it."""

    tag: int
    keyword: str
    vr: str
    index: int | None = None
    constant: str | None = None


@dataclass(frozen=True)
class MatchOptions:
    pn_case_sensitive: bool = False
    retrieve_ae_title: str = ""


@dataclass
class FindQuery:
    level: str
    sql: str
    params: list[Any]
    keys: list[ReturnKey]
    unsupported: list[str] = field(default_factory=list)  # keys answered empty
    where: str = ""  # the conditions alone, for tests and logs


def compile_find(identifier: Dataset, model: str, options: MatchOptions) -> FindQuery:
    """Build the SELECT for `identifier` in `model` (PATIENT_ROOT/STUDY_ROOT).
    Raises IdentifierError for an identifier no SCP could answer."""
    level = _query_level(identifier, model)
    rank = level_rank(level, model)
    selects: list[str] = []
    keys: list[ReturnKey] = [ReturnKey(0x00080052, "QueryRetrieveLevel", "CS", constant=level)]
    unsupported: list[str] = []
    conditions: list[str] = []
    params: list[Any] = []
    values: dict[str, Any] = {}

    for elem in identifier:
        keyword = elem.keyword or keyword_for_tag(elem.tag) or str(elem.tag)
        if keyword in NOT_KEYS or elem.tag.element == 0:  # group lengths are not keys
            continue
        attr = ATTRIBUTES.get(keyword)
        empty = _is_empty(elem.value)
        if attr is not None and level_rank(attr.level, model) > rank:
            # C.4.1.1.3.1: an identifier holds keys of its level and above only.
            if not empty:
                raise IdentifierError(
                    f"{keyword} is a {attr.level} key, not valid at {level}", invalid_level=True
                )
            attr = None
        if attr is not None and elem.VR == "SQ":
            # C.4.1.1.3.1: a key's VR is its dictionary VR; a sequence in
            # place of a string cannot be matched.
            raise IdentifierError(f"{keyword} is {attr.vr}, not a sequence", invalid_level=True)
        if attr is None or elem.VR == "SQ":
            # C.4.1.1.4: optional keys not supported come back empty, with
            # the 0xFF01 pending status telling the SCU so.
            unsupported.append(keyword)
            keys.append(ReturnKey(int(elem.tag), keyword, elem.VR))
            continue
        keys.append(_return_key(attr, selects, options))
        if not empty:
            _check_length(attr, elem.value)
            values[keyword] = elem.value

    present = {k.keyword for k in keys}
    for upper in MODELS[model][: MODELS[model].index(level) + 1]:
        # C.4.1.1.3.1 (and C.2.2.1.1): the unique keys of the query level and
        # the levels above are always returned, asked for or not.
        unique = UNIQUE_KEYS[upper]
        if unique not in present:
            keys.append(_return_key(ATTRIBUTES[unique], selects, options))

    _combined_date_time(values, conditions, params)
    for keyword, value in values.items():
        clause = _condition(ATTRIBUTES[keyword], value, options)
        if clause is not None:
            conditions.append(clause[0])
            params.extend(clause[1])

    where = " AND ".join(conditions)
    sql = f"SELECT {', '.join(selects) or '1'} FROM {FROM[level]}"
    if where:
        sql += " WHERE " + where
    keys.sort(key=lambda k: k.tag)
    return FindQuery(level, sql, params, keys, unsupported, where)


def _query_level(identifier: Dataset, model: str) -> str:
    """C.4.1.1.3.1: QueryRetrieveLevel is required and names a level of the model."""
    raw = identifier.get("QueryRetrieveLevel")
    level = str(raw or "").strip().upper()
    if not level:
        raise IdentifierError("QueryRetrieveLevel is missing", invalid_level=True)
    if level not in MODELS[model]:
        allowed = "/".join(MODELS[model])
        raise IdentifierError(
            f"QueryRetrieveLevel {level[:16]} not one of {allowed}", invalid_level=True
        )
    return level


def _return_key(attr: Attribute, selects: list[str], options: MatchOptions) -> ReturnKey:
    tag = _tag(attr.keyword)
    if attr.keyword == "RetrieveAETitle":
        return ReturnKey(tag, attr.keyword, attr.vr, constant=options.retrieve_ae_title)
    if attr.constant is not None:
        return ReturnKey(tag, attr.keyword, attr.vr, constant=attr.constant)
    selects.append(attr.expr or "NULL")
    return ReturnKey(tag, attr.keyword, attr.vr, index=len(selects) - 1)


def _tag(keyword: str) -> int:
    return _TAGS[keyword]


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, MultiValue | list | tuple):
        return all(_is_empty(v) for v in value)
    return str(value).strip(" \x00") == ""


# PS3.5 6.2: the longest value of each VR (PN: per component group); ranges
# (C.2.2.2.5) are two values and a hyphen.
_MAX_LENGTH = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "UI": 64, "PN": 64, "IS": 12}
_MAX_LENGTH |= {"DA": 8 * 2 + 1, "TM": 13 * 2 + 1, "DT": 26 * 2 + 1}


def _check_length(attr: Attribute, value: Any) -> None:
    """A value longer than its VR allows is malformed, not data to match."""
    limit = _MAX_LENGTH.get(attr.vr)
    if limit is None:
        return
    for text in _values(value):
        parts = text.split("=") if attr.vr == "PN" else [text]
        if any(len(part) > limit for part in parts):
            raise IdentifierError(f"{attr.keyword} is longer than {attr.vr} allows ({limit})")


def _values(value: Any) -> list[str]:
    items = value if isinstance(value, MultiValue | list | tuple) else [value]
    return [str(v).strip(" \x00") for v in items]


def _condition(attr: Attribute, value: Any, opts: MatchOptions) -> tuple[str, list] | None:
    """One key's clause, or None when it matches everything."""
    values = _values(value)
    if any(v.strip("*") == "" for v in values) and attr.vr not in ("UI", "DA", "TM", "DT"):
        # C.2.2.2.4: a value of only "*" matches every entity, empty or not.
        return None
    if attr.exists is not None:
        # C.6.2.1.2 ModalitiesInStudy / SOPClassesInStudy: a study matches if
        # any of its series has any of the values (C.2.2.2.2 list matching).
        return attr.exists, [values]
    if attr.constant is not None or attr.expr is None:
        return None  # constants always match
    if attr.vr == "UI":
        # C.2.2.2.2: list of UID matching, no wildcards in UIDs.
        return (
            (f"{attr.expr} = ANY(%s)", [values])
            if len(values) > 1
            else (
                f"{attr.expr} = %s",
                values,
            )
        )
    clauses = [_single(attr, v, opts) for v in values]
    sql = " OR ".join(c[0] for c in clauses)
    return (f"({sql})" if len(clauses) > 1 else sql), [p for c in clauses for p in c[1]]


def _single(attr: Attribute, value: str, opts: MatchOptions) -> tuple[str, list]:
    expr = attr.expr or "NULL"
    if attr.vr in _PATTERN:
        return _date_like(attr, value)
    if attr.vr == "IS":
        try:
            return f"{expr} = %s", [int(value)]
        except ValueError:
            raise IdentifierError(f"{attr.keyword} {value[:20]!r} is not an integer") from None
    if attr.vr == "PN":
        return _person_name(expr, value, opts)
    # C.2.2.2.1 single value matching (case-sensitive for every VR but PN),
    # C.2.2.2.4 wildcard matching.
    return _string_match(expr, value, case_insensitive=False)


def _string_match(expr: str, value: str, *, case_insensitive: bool) -> tuple[str, list]:
    if case_insensitive:
        expr, placeholder = f"lower({expr})", "lower(%s)"
    else:
        placeholder = "%s"
    if "*" in value or "?" in value:
        return f"{expr} LIKE {placeholder} ESCAPE '\\'", [like_pattern(value)]
    return f"{expr} = {placeholder}", [value]


def like_pattern(value: str) -> str:
    """C.2.2.2.4: `*` is any sequence, `?` any single character; everything
    else, `%`, `_` and `\\` included, matches itself."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _person_name(expr: str, value: str, opts: MatchOptions) -> tuple[str, list]:
    """C.2.2.2.1 PN matching. Case-insensitive unless PACS_PN_CASE_SENSITIVE
    (the standard lets the SCP choose, and viewers type names in any case).
    A value without `=` matches any of the alphabetic, ideographic and
    phonetic component groups; `A=I=P` matches each given group against its
    own group (an empty or `*` group matches anything)."""
    insensitive = not opts.pn_case_sensitive
    groups = value.split("=")
    if len(groups) == 1:
        clauses = [
            _string_match(f"split_part({expr}, '=', {n})", value, case_insensitive=insensitive)
            for n in (1, 2, 3)
        ]
        return "(" + " OR ".join(c[0] for c in clauses) + ")", [c[1][0] for c in clauses]
    parts = [
        _string_match(f"split_part({expr}, '=', {n})", group, case_insensitive=insensitive)
        for n, group in enumerate(groups[:3], start=1)
        if group.strip("*") != ""
    ]
    if not parts:
        return "TRUE", []
    return "(" + " AND ".join(c[0] for c in parts) + ")", [c[1][0] for c in parts]


def parse_range(value: str, vr: str, keyword: str = "") -> tuple[str | None, str | None]:
    """C.2.2.2.5 range matching: `A-B`, `-B`, `A-`; a single value is `A-A`.
    Returns (lower, upper) inclusive bounds; the upper is padded so a partial
    time or datetime covers its whole span."""
    value = value.strip()
    low, dash, high = value.partition("-")
    if not dash:
        high = low
    low, high = low.strip(), high.strip()
    if not low and not high:
        raise IdentifierError(f"{keyword} range {value!r} has no bounds")
    for bound in (low, high):
        if bound and not _PATTERN[vr].fullmatch(bound):
            raise IdentifierError(f"{keyword} {value[:30]!r} is not a {vr} value or range")
    if high and vr in _UPPER_PAD:
        high = high + _UPPER_PAD[vr][len(high) :]
    return low or None, high or None


def _date_like(attr: Attribute, value: str) -> tuple[str, list]:
    """C.2.2.2.5: DA/TM/DT ranges (text of fixed-width digits compares in
    time order); a single DA value is single value matching (C.2.2.2.1)."""
    expr = attr.expr or "NULL"
    if attr.vr == "DA" and "-" not in value:
        if not _DA.fullmatch(value):
            raise IdentifierError(f"{attr.keyword} {value[:30]!r} is not a DA value or range")
        return f"{expr} = %s", [value]
    low, high = parse_range(value, attr.vr, attr.keyword)
    clauses, params = [], []
    if low:
        clauses.append(f"{expr} >= %s")
        params.append(low)
    if high:
        clauses.append(f"{expr} <= %s")
        params.append(high)
    return "(" + " AND ".join(clauses) + ")", params


def _combined_date_time(values: dict[str, Any], conditions: list[str], params: list) -> None:
    """C.2.2.2.5.1: StudyDate and StudyTime both given as ranges form one
    date-time range: `20240101-20240131` with `080000-170000` means from
    2024-01-01 08:00 to 2024-01-31 17:00. Consumes both keys from `values`."""
    date, time = values.get("StudyDate"), values.get("StudyTime")
    if not isinstance(date, str) or not isinstance(time, str):
        return
    if "-" not in date or "-" not in time:
        return
    d_low, d_high = parse_range(date, "DA", "StudyDate")
    t_low, t_high = parse_range(time, "TM", "StudyTime")
    # Row comparison is lexicographic: a later date matches whatever its
    # time; on the boundary date the time decides.
    if d_low:
        if t_low:
            conditions.append("(st.study_date, st.study_time) >= (%s, %s)")
            params.extend([d_low, t_low])
        else:
            conditions.append("st.study_date >= %s")
            params.append(d_low)
    if d_high:
        if t_high:
            conditions.append("(st.study_date, st.study_time) <= (%s, %s)")
            params.extend([d_high, t_high])
        else:
            conditions.append("st.study_date <= %s")
            params.append(d_high)
    del values["StudyDate"], values["StudyTime"]


# Tags of the attributes the index knows, looked up once.
_TAGS: dict[str, int] = {keyword: int(tag_for_keyword(keyword)) for keyword in ATTRIBUTES}
