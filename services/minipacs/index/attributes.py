"""Which Query/Retrieve attributes the index holds, at which level, and the SQL
expression that yields each one (PS3.4 C.6.1.1 and C.6.2.1 key tables)."""

from __future__ import annotations

from dataclasses import dataclass

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")

PATIENT_ROOT = "PATIENT_ROOT"
STUDY_ROOT = "STUDY_ROOT"
MODELS = {PATIENT_ROOT: LEVELS, STUDY_ROOT: LEVELS[1:]}

# The unique key of each level (PS3.4 C.6.1.1.2-5); Study Root has no patient
# unique key because patient attributes belong to its STUDY level.
UNIQUE_KEYS = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}

# FROM clause of each query level: the level's table joined to its parents,
# so keys of the levels above can be matched and returned (relational style).
FROM = {
    "PATIENT": "patients p",
    "STUDY": "studies st JOIN patients p ON p.id = st.patient_fk",
    "SERIES": (
        "series se JOIN studies st ON st.id = se.study_fk JOIN patients p ON p.id = st.patient_fk"
    ),
    "IMAGE": (
        "instances i JOIN series se ON se.id = i.series_fk "
        "JOIN studies st ON st.id = se.study_fk JOIN patients p ON p.id = st.patient_fk"
    ),
}


@dataclass(frozen=True)
class Attribute:
    keyword: str
    level: str  # PATIENT/STUDY/SERIES/IMAGE; "ANY" for level-independent keys
    vr: str
    expr: str | None = None  # SQL yielding the value (text or integer)
    # For attributes matched on a child table (ModalitiesInStudy...): an EXISTS
    # subquery with one `%s` placeholder for the array of wanted values.
    exists: str | None = None
    constant: str | None = None  # value known without the database


_MODALITIES = (
    "(SELECT string_agg(DISTINCT y.modality, '\\') FROM series y WHERE y.study_fk = st.id)"
)
_SOP_CLASSES = (
    "(SELECT string_agg(DISTINCT z.sop_class_uid, '\\') FROM series y "
    "JOIN instances z ON z.series_fk = y.id WHERE y.study_fk = st.id)"
)

ATTRIBUTES: dict[str, Attribute] = {
    a.keyword: a
    for a in (
        # PATIENT
        Attribute("PatientID", "PATIENT", "LO", "p.patient_id"),
        Attribute("PatientName", "PATIENT", "PN", "p.patient_name"),
        Attribute("PatientBirthDate", "PATIENT", "DA", "p.patient_birth_date"),
        Attribute("PatientSex", "PATIENT", "CS", "p.patient_sex"),
        Attribute(
            "NumberOfPatientRelatedStudies",
            "PATIENT",
            "IS",
            "(SELECT count(*) FROM studies x WHERE x.patient_fk = p.id)",
        ),
        Attribute(
            "NumberOfPatientRelatedSeries",
            "PATIENT",
            "IS",
            "(SELECT count(*) FROM studies x JOIN series y ON y.study_fk = x.id "
            "WHERE x.patient_fk = p.id)",
        ),
        Attribute(
            "NumberOfPatientRelatedInstances",
            "PATIENT",
            "IS",
            "(SELECT count(*) FROM studies x JOIN series y ON y.study_fk = x.id "
            "JOIN instances z ON z.series_fk = y.id WHERE x.patient_fk = p.id)",
        ),
        # STUDY
        Attribute("StudyInstanceUID", "STUDY", "UI", "st.study_instance_uid"),
        Attribute("StudyDate", "STUDY", "DA", "st.study_date"),
        Attribute("StudyTime", "STUDY", "TM", "st.study_time"),
        Attribute("AccessionNumber", "STUDY", "SH", "st.accession_number"),
        Attribute("StudyDescription", "STUDY", "LO", "st.study_description"),
        Attribute("ReferringPhysicianName", "STUDY", "PN", "st.referring_physician_name"),
        Attribute("StudyID", "STUDY", "SH", "st.study_id"),
        Attribute(
            "ModalitiesInStudy",
            "STUDY",
            "CS",
            _MODALITIES,
            exists=(
                "EXISTS (SELECT 1 FROM series y WHERE y.study_fk = st.id AND y.modality = ANY(%s))"
            ),
        ),
        Attribute(
            "SOPClassesInStudy",
            "STUDY",
            "UI",
            _SOP_CLASSES,
            exists=(
                "EXISTS (SELECT 1 FROM series y JOIN instances z ON z.series_fk = y.id "
                "WHERE y.study_fk = st.id AND z.sop_class_uid = ANY(%s))"
            ),
        ),
        Attribute(
            "NumberOfStudyRelatedSeries",
            "STUDY",
            "IS",
            "(SELECT count(*) FROM series y WHERE y.study_fk = st.id)",
        ),
        Attribute(
            "NumberOfStudyRelatedInstances",
            "STUDY",
            "IS",
            "(SELECT count(*) FROM series y JOIN instances z ON z.series_fk = y.id "
            "WHERE y.study_fk = st.id)",
        ),
        # SERIES
        Attribute("SeriesInstanceUID", "SERIES", "UI", "se.series_instance_uid"),
        Attribute("Modality", "SERIES", "CS", "se.modality"),
        Attribute("SeriesNumber", "SERIES", "IS", "se.series_number"),
        Attribute("SeriesDescription", "SERIES", "LO", "se.series_description"),
        Attribute("BodyPartExamined", "SERIES", "CS", "se.body_part_examined"),
        Attribute(
            "NumberOfSeriesRelatedInstances",
            "SERIES",
            "IS",
            "(SELECT count(*) FROM instances z WHERE z.series_fk = se.id)",
        ),
        # IMAGE
        Attribute("SOPInstanceUID", "IMAGE", "UI", "i.sop_instance_uid"),
        Attribute("SOPClassUID", "IMAGE", "UI", "i.sop_class_uid"),
        Attribute("InstanceNumber", "IMAGE", "IS", "i.instance_number"),
        # Any level: where the matches can be retrieved from, and how.
        Attribute("RetrieveAETitle", "ANY", "AE", constant=""),  # filled with our AE title
        Attribute("InstanceAvailability", "ANY", "CS", constant="ONLINE"),
    )
}


def level_rank(level: str, model: str) -> int:
    """Depth of a level in a model; patient attributes sit at the STUDY level
    of the Study Root model (PS3.4 C.6.2.1)."""
    if level == "ANY":
        return -1
    if model == STUDY_ROOT and level == "PATIENT":
        level = "STUDY"
    return LEVELS.index(level)
