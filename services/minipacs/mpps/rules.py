"""The rules of the MPPS SOP class (PS3.4 F.7.2) as pure functions: what an
N-CREATE must carry, what an N-SET may change, what a final state needs."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from minipacs.status import Status
from minipacs.uids import is_valid_uid

IN_PROGRESS = "IN PROGRESS"
COMPLETED = "COMPLETED"
DISCONTINUED = "DISCONTINUED"
FINAL = (COMPLETED, DISCONTINUED)

# F.7.2.1.2 Table F.7.2-1: N-CREATE attributes of Type 1 (present, with a
# value). Type 2 ones (present, may be empty) are not enforced: a modality
# omitting an empty Study ID should still get its procedure recorded.
CREATE_TYPE_1 = (
    "ScheduledStepAttributesSequence",
    "PerformedProcedureStepID",
    "PerformedStationAETitle",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "PerformedProcedureStepStatus",
    "Modality",
)
# Table F.7.2-1, N-SET "Not allowed": fixed once the step is created.
NOT_SETTABLE = (
    "ScheduledStepAttributesSequence",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "ReferencedPatientSequence",
    "PerformedProcedureStepID",
    "PerformedStationAETitle",
    "PerformedStationName",
    "PerformedLocation",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "Modality",
    "StudyID",
)
# F.7.2.2.2 final state: what COMPLETED or DISCONTINUED requires.
FINAL_TYPE_1 = ("PerformedProcedureStepEndDate", "PerformedProcedureStepEndTime")

NO_LONGER_UPDATABLE = "Performed Procedure Step Object may no longer be updated"


@dataclass(frozen=True)
class Problem:
    """Why a request is refused: a named status, a comment, offending tags."""

    status: Status
    comment: str
    tags: tuple[int, ...] = ()


@dataclass(frozen=True)
class StepRef:
    """One Scheduled Step Attributes item: what links the MPPS to the worklist."""

    study_instance_uid: str
    accession_number: str | None
    requested_procedure_id: str | None
    step_id: str | None


def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return int(tag)


def _has_value(ds: Dataset, keyword: str) -> bool:
    if keyword not in ds or ds[keyword].value is None:
        return False
    value = ds[keyword].value
    return len(value) > 0 if hasattr(value, "__len__") else True


def _text(ds: Dataset, keyword: str) -> str | None:
    if keyword not in ds or ds[keyword].value is None:
        return None
    text = str(ds[keyword].value).strip(" \x00")
    return text or None


def _tags_comment(prefix: str, tags: list[int]) -> str:
    """ErrorComment naming the tags (0xGGGGEEEE as GGGGEEEE), within LO's 64."""
    return f"{prefix} " + " ".join(f"{t:08X}" for t in tags)


def _same(a: object, b: object) -> bool:
    """Equal values, counting absent, empty and zero-length as one."""
    return (a or None) == (b or None)


def check_create(ds: Dataset) -> Problem | None:
    """N-CREATE (F.7.2.1): Type 1 attributes present and valued, the status
    IN PROGRESS, each Scheduled Step item naming a valid Study Instance UID."""
    missing = [_tag(k) for k in CREATE_TYPE_1 if k not in ds]
    if missing:
        return Problem(Status.MISSING_ATTRIBUTE, _tags_comment("missing", missing), tuple(missing))
    empty = [_tag(k) for k in CREATE_TYPE_1 if not _has_value(ds, k)]
    if empty:
        return Problem(
            Status.MISSING_ATTRIBUTE_VALUE, _tags_comment("no value:", empty), tuple(empty)
        )
    status = _text(ds, "PerformedProcedureStepStatus")
    if status != IN_PROGRESS:
        return Problem(
            Status.INVALID_ATTRIBUTE_VALUE,
            f"PerformedProcedureStepStatus must be IN PROGRESS, not {status!r}"[:64],
            (_tag("PerformedProcedureStepStatus"),),
        )
    for item in ds.ScheduledStepAttributesSequence:
        uid = _text(item, "StudyInstanceUID")
        if uid is None:
            tag = _tag("StudyInstanceUID")
            return Problem(
                Status.MISSING_ATTRIBUTE,
                "missing 0020000D in ScheduledStepAttributesSequence",
                (_tag("ScheduledStepAttributesSequence"), tag),
            )
        if not is_valid_uid(uid):
            return Problem(
                Status.INVALID_ATTRIBUTE_VALUE,
                f"StudyInstanceUID {uid!r} is not a UID"[:64],
                (_tag("StudyInstanceUID"),),
            )
    return None


def apply_set(stored: Dataset, modification: Dataset) -> Dataset | Problem:
    """N-SET (F.7.2.2): the stored dataset with the modification applied, or
    the Problem refusing it. The caller has already refused a final step."""
    changed = [
        elem.tag
        for elem in modification
        if elem.keyword in NOT_SETTABLE
        and not _same(stored[elem.tag].value if elem.tag in stored else None, elem.value)
    ]
    if changed:
        return Problem(
            Status.INVALID_ATTRIBUTE_VALUE,
            _tags_comment("not settable:", [int(t) for t in changed])[:64],
            tuple(int(t) for t in changed),
        )
    merged = Dataset()
    merged.update(stored)
    for elem in modification:
        merged[elem.tag] = elem
    status = _text(merged, "PerformedProcedureStepStatus")
    if status not in (IN_PROGRESS, *FINAL):
        return Problem(
            Status.INVALID_ATTRIBUTE_VALUE,
            f"status may only become COMPLETED or DISCONTINUED, not {status!r}"[:64],
            (_tag("PerformedProcedureStepStatus"),),
        )
    if status in FINAL:
        problem = check_final(merged, status)
        if problem is not None:
            return problem
    return merged


def check_final(ds: Dataset, status: str) -> Problem | None:
    """F.7.2.2.2: end date and time for either final state; a COMPLETED step
    also lists the series it produced, each with its Series Instance UID."""
    missing = [_tag(k) for k in FINAL_TYPE_1 if not _has_value(ds, k)]
    if status == COMPLETED:
        series = ds.get("PerformedSeriesSequence")
        if not series:
            missing.append(_tag("PerformedSeriesSequence"))
        elif not all(is_valid_uid(_text(item, "SeriesInstanceUID") or "") for item in series):
            missing.append(_tag("SeriesInstanceUID"))
    if missing:
        return Problem(
            Status.MISSING_ATTRIBUTE,
            _tags_comment(f"{status} needs", missing)[:64],
            tuple(missing),
        )
    return None


def step_refs(ds: Dataset) -> list[StepRef]:
    """The Scheduled Step Attributes items that name a study."""
    refs = []
    for item in ds.get("ScheduledStepAttributesSequence") or []:
        uid = _text(item, "StudyInstanceUID")
        if uid:
            refs.append(
                StepRef(
                    uid,
                    _text(item, "AccessionNumber"),
                    _text(item, "RequestedProcedureID"),
                    _text(item, "ScheduledProcedureStepID"),
                )
            )
    return refs


def columns(ds: Dataset) -> dict[str, str | None]:
    """The searchable columns of the `mpps` table, read from the dataset."""
    refs = step_refs(ds)
    first = refs[0] if refs else None
    return {
        "performed_procedure_step_status": _text(ds, "PerformedProcedureStepStatus"),
        "performed_procedure_step_id": _text(ds, "PerformedProcedureStepID"),
        "performed_station_ae_title": _text(ds, "PerformedStationAETitle"),
        "modality": _text(ds, "Modality"),
        "patient_id": _text(ds, "PatientID"),
        "patient_name": _text(ds, "PatientName"),
        "accession_number": first.accession_number if first else None,
        "study_instance_uid": first.study_instance_uid if first else None,
        "scheduled_procedure_step_id": first.step_id if first else None,
        "performed_procedure_step_start_date": _text(ds, "PerformedProcedureStepStartDate"),
        "performed_procedure_step_start_time": _text(ds, "PerformedProcedureStepStartTime"),
        "performed_procedure_step_end_date": _text(ds, "PerformedProcedureStepEndDate"),
        "performed_procedure_step_end_time": _text(ds, "PerformedProcedureStepEndTime"),
        "performed_procedure_step_description": _text(ds, "PerformedProcedureStepDescription"),
    }
