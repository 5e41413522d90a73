"""Modality Worklist matching (PS3.4 K.2.2, using the C-FIND rules of
C.2.2.2): an identifier dataset in, parameterised SQL out; and the response
datasets built from matching rows. Pure functions, no database."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from minipacs.uids import is_valid_uid

SPS_SEQUENCE = "ScheduledProcedureStepSequence"


@dataclass(frozen=True)
class Key:
    column: str
    kind: str  # text | pn | date | time | uid


# Attributes of the worklist item at the top level of the identifier.
TOP_KEYS = {
    "PatientName": Key("patient_name", "pn"),
    "PatientID": Key("patient_id", "text"),
    "PatientBirthDate": Key("patient_birth_date", "date"),
    "PatientSex": Key("patient_sex", "text"),
    "AccessionNumber": Key("accession_number", "text"),
    "RequestingPhysician": Key("requesting_physician", "pn"),
    "RequestedProcedureID": Key("requested_procedure_id", "text"),
    "RequestedProcedureDescription": Key("requested_procedure_description", "text"),
    "StudyInstanceUID": Key("study_instance_uid", "uid"),
}
# Attributes of the Scheduled Procedure Step Sequence (0040,0100) item.
SPS_KEYS = {
    "Modality": Key("modality", "text"),
    "ScheduledStationAETitle": Key("scheduled_station_ae_title", "text"),
    "ScheduledProcedureStepStartDate": Key("scheduled_procedure_step_start_date", "date"),
    "ScheduledProcedureStepStartTime": Key("scheduled_procedure_step_start_time", "time"),
    "ScheduledProcedureStepStatus": Key("scheduled_procedure_step_status", "text"),
    "ScheduledProcedureStepID": Key("scheduled_procedure_step_id", "text"),
    "ScheduledProcedureStepDescription": Key("scheduled_procedure_step_description", "text"),
    "ScheduledPerformingPhysicianName": Key("scheduled_performing_physician_name", "pn"),
}
COLUMNS = [k.column for k in (*TOP_KEYS.values(), *SPS_KEYS.values())]


class QueryError(ValueError):
    """An identifier value that cannot be matched (malformed date, range...)."""


def build_query(identifier: Dataset) -> tuple[str, list]:
    """SELECT for the steps matching `identifier`. Keys of the Scheduled
    Procedure Step may be given inside the sequence or, as the seed's README
    types them, at the top level: both places are matched (AND)."""
    conditions: list[str] = []
    params: list = []
    places = [(identifier, {**TOP_KEYS, **SPS_KEYS})]
    item = sps_item(identifier)
    if item is not None:
        places.append((item, SPS_KEYS))
    for ds, keys in places:
        for keyword, key in keys.items():
            if keyword not in ds:
                continue
            condition = key_condition(key, _value(ds[keyword]), keyword)
            if condition is not None:
                conditions.append(condition[0])
                params.extend(condition[1])
    where = " AND ".join(conditions) or "TRUE"
    sql = (
        f"SELECT id, {', '.join(COLUMNS)} FROM worklist WHERE {where} "
        "ORDER BY scheduled_procedure_step_start_date, "
        "scheduled_procedure_step_start_time NULLS FIRST, id"
    )
    return sql, params


def sps_item(identifier: Dataset) -> Dataset | None:
    """The first item of the identifier's Scheduled Procedure Step Sequence;
    None when the sequence is absent or empty (an empty one is universal)."""
    seq = identifier.get(SPS_SEQUENCE)
    return seq[0] if seq else None


def key_condition(key: Key, value: str, keyword: str) -> tuple[str, list] | None:
    """One SQL condition for one key, None for universal matching."""
    col = key.column
    # C.2.2.2.3 universal matching: a zero-length value (or a lone "*").
    if value == "" or value == "*":
        return None
    if key.kind == "uid":
        # C.2.2.2.2 list of UID matching: backslash-separated UIDs.
        uids = [u.strip() for u in value.split("\\")]
        if not all(is_valid_uid(u) for u in uids):
            raise QueryError(f"{keyword} {value!r} is not a UID list")
        return f"{col} = ANY(%s)", [uids]
    if key.kind == "date":
        return _range(col, value, keyword, _date_bound)
    if key.kind == "time":
        return _range(col, value, keyword, _time_bound, point_is_range=True)
    if key.kind == "pn":
        # PN matching is case-insensitive here (PS3.4 C.2.2.2.1 leaves it to
        # the SCP; modalities and users type names in any case).
        if "*" in value or "?" in value:
            return f"lower({col}) LIKE lower(%s) ESCAPE '\\'", [like_pattern(value)]
        return f"lower({col}) = lower(%s)", [value]
    # C.2.2.2.4 wildcard matching: "*" any run, "?" one character.
    if "*" in value or "?" in value:
        return f"{col} LIKE %s ESCAPE '\\'", [like_pattern(value)]
    # C.2.2.2.1 single value matching.
    return f"{col} = %s", [value]


def like_pattern(value: str) -> str:
    """DICOM wildcards to a LIKE pattern, escaping LIKE's own % _ and \\."""
    out = []
    for c in value:
        if c in "\\%_":
            out.append("\\" + c)
        elif c == "*":
            out.append("%")
        elif c == "?":
            out.append("_")
        else:
            out.append(c)
    return "".join(out)


def _date_bound(text: str, upper: bool) -> str:
    if len(text) != 8 or not text.isdigit():
        raise ValueError
    return text


def _time_bound(text: str, upper: bool) -> str:
    """HH[MM[SS[.F]]] padded so that text comparison orders times: the lower
    bound with zeros, the upper bound to the end of its precision."""
    main, dot, fraction = text.partition(".")
    if len(main) not in (2, 4, 6) or not main.isdigit() or (fraction and not fraction.isdigit()):
        raise ValueError
    if not upper:
        return main.ljust(6, "0") + (dot + fraction if dot else "")
    return main + "5959"[: 6 - len(main)] + "." + fraction.ljust(6, "9")


def _range(
    col: str, value: str, keyword: str, bound, point_is_range: bool = False
) -> tuple[str, list]:
    """C.2.2.2.5 range matching: "A-B", "A-" or "-B"; a single time value
    matches the whole span of its precision (1000 is 10:00:00 to 10:00:59)."""
    try:
        if "-" not in value:
            if not point_is_range:
                return f"{col} = %s", [bound(value, False)]
            low, high = value, value
        else:
            low, sep, high = value.partition("-")
            if "-" in high or (not low and not high):
                raise ValueError
        conditions, params = [], []
        if low:
            conditions.append(f"{col} >= %s")
            params.append(bound(low, False))
        if high:
            conditions.append(f"{col} <= %s")
            params.append(bound(high, True))
        return " AND ".join(conditions), params
    except ValueError:
        raise QueryError(f"{keyword} {value!r} is not a valid value or range") from None


def _value(elem: DataElement) -> str:
    """The element's value as sent: several values (pydicom splits them at
    the backslash) joined back with it, so UID lists match per C.2.2.2.2."""
    if elem.VR == "SQ" or elem.value is None:
        return ""
    if isinstance(elem.value, MultiValue | list | tuple):
        return "\\".join(str(v).strip(" \x00") for v in elem.value)
    return str(elem.value).strip(" \x00")


def response(identifier: Dataset, row: dict) -> Dataset:
    """The identifier's keys with the row's values, each in its proper
    place; the seed's flat step keys are answered at the top level and
    inside the sequence. Keys we do not keep come back empty."""
    ds = Dataset()
    flat_sps = [kw for kw in SPS_KEYS if kw in identifier]
    for elem in identifier:
        if elem.keyword == SPS_SEQUENCE:
            continue
        key = TOP_KEYS.get(elem.keyword) or SPS_KEYS.get(elem.keyword)
        if elem.keyword == "SpecificCharacterSet":
            continue
        ds.add(_filled(elem, key, row))
    if SPS_SEQUENCE in identifier or flat_sps:
        requested = sps_item(identifier)
        item = Dataset()
        if requested is None and SPS_SEQUENCE in identifier:
            # C.2.2.2.6 an empty sequence: return every attribute we hold.
            for keyword, key in SPS_KEYS.items():
                setattr(item, keyword, row.get(key.column) or "")
        if requested is not None:
            for elem in requested:
                item.add(_filled(elem, SPS_KEYS.get(elem.keyword), row))
        for keyword in flat_sps:
            if keyword not in item:
                setattr(item, keyword, row.get(SPS_KEYS[keyword].column) or "")
        ds.ScheduledProcedureStepSequence = Sequence([item])
    if any(_non_ascii(v) for v in row.values()):
        ds.SpecificCharacterSet = "ISO_IR 192"
    elif "SpecificCharacterSet" in identifier:
        ds.SpecificCharacterSet = identifier.SpecificCharacterSet
    return ds


def _filled(elem: DataElement, key: Key | None, row: dict) -> DataElement:
    if key is None:
        if elem.VR == "SQ":
            return DataElement(elem.tag, "SQ", Sequence())
        return DataElement(elem.tag, elem.VR, None)
    return DataElement(elem.tag, elem.VR, row.get(key.column) or None)


def _non_ascii(value: object) -> bool:
    return isinstance(value, str) and not value.isascii()
