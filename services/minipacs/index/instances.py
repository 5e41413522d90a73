"""SQL for the patients/studies/series/instances tables (writes and lookups)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import psycopg

from minipacs.index.record import InstanceRecord

# One round trip stores an instance: each level is upserted and hands its id
# to the level below. Rows are locked top-down in the same order by every
# writer, so concurrent stores into one study serialise without deadlocks.
# Existing attribute values are refreshed from the newest instance, but a
# study or series never moves to another parent here.
_UPSERT = """
WITH p AS (
    INSERT INTO patients (patient_id, patient_name, patient_birth_date, patient_sex)
    VALUES (%(patient_id)s, %(patient_name)s, %(patient_birth_date)s, %(patient_sex)s)
    ON CONFLICT (patient_id) DO UPDATE SET
        patient_name = COALESCE(EXCLUDED.patient_name, patients.patient_name),
        patient_birth_date = COALESCE(EXCLUDED.patient_birth_date, patients.patient_birth_date),
        patient_sex = COALESCE(EXCLUDED.patient_sex, patients.patient_sex),
        updated_at = now()
    RETURNING id
), st AS (
    INSERT INTO studies (patient_fk, study_instance_uid, study_date, study_time,
        accession_number, study_description, referring_physician_name, study_id)
    SELECT p.id, %(study_instance_uid)s, %(study_date)s, %(study_time)s,
        %(accession_number)s, %(study_description)s, %(referring_physician_name)s,
        %(study_id)s
    FROM p
    ON CONFLICT (study_instance_uid) DO UPDATE SET
        study_date = COALESCE(EXCLUDED.study_date, studies.study_date),
        study_time = COALESCE(EXCLUDED.study_time, studies.study_time),
        accession_number = COALESCE(EXCLUDED.accession_number, studies.accession_number),
        study_description = COALESCE(EXCLUDED.study_description, studies.study_description),
        referring_physician_name = COALESCE(EXCLUDED.referring_physician_name,
                                            studies.referring_physician_name),
        study_id = COALESCE(EXCLUDED.study_id, studies.study_id),
        updated_at = now()
    RETURNING id
), se AS (
    INSERT INTO series (study_fk, series_instance_uid, modality, series_number,
        series_description, body_part_examined)
    SELECT st.id, %(series_instance_uid)s, %(modality)s, %(series_number)s,
        %(series_description)s, %(body_part_examined)s
    FROM st
    ON CONFLICT (series_instance_uid) DO UPDATE SET
        modality = COALESCE(EXCLUDED.modality, series.modality),
        series_number = COALESCE(EXCLUDED.series_number, series.series_number),
        series_description = COALESCE(EXCLUDED.series_description, series.series_description),
        body_part_examined = COALESCE(EXCLUDED.body_part_examined, series.body_part_examined),
        updated_at = now()
    RETURNING id
)
INSERT INTO instances (series_fk, sop_instance_uid, sop_class_uid, instance_number,
    transfer_syntax_uid, file_path, file_size, calling_ae)
SELECT se.id, %(sop_instance_uid)s, %(sop_class_uid)s, %(instance_number)s,
    %(transfer_syntax_uid)s, %(file_path)s, %(file_size)s, %(calling_ae)s
FROM se
ON CONFLICT (sop_instance_uid) DO UPDATE SET
    series_fk = EXCLUDED.series_fk,
    sop_class_uid = EXCLUDED.sop_class_uid,
    instance_number = EXCLUDED.instance_number,
    transfer_syntax_uid = EXCLUDED.transfer_syntax_uid,
    file_path = EXCLUDED.file_path,
    file_size = EXCLUDED.file_size,
    calling_ae = EXCLUDED.calling_ae,
    received_at = now()
"""

_FIND = """
SELECT st.study_instance_uid, se.series_instance_uid, i.file_path
FROM instances i
JOIN series se ON se.id = i.series_fk
JOIN studies st ON st.id = se.study_fk
WHERE i.sop_instance_uid = %s
"""


@dataclass(frozen=True)
class StoredInstance:
    study_instance_uid: str
    series_instance_uid: str
    file_path: str


def find_instance(conn: psycopg.Connection, sop_instance_uid: str) -> StoredInstance | None:
    """The indexed copy of an instance, if there is one."""
    row = conn.execute(_FIND, (sop_instance_uid,)).fetchone()
    return StoredInstance(*row) if row else None


def upsert_instance(
    conn: psycopg.Connection,
    record: InstanceRecord,
    *,
    transfer_syntax_uid: str,
    file_path: str,
    file_size: int,
    calling_ae: str,
) -> None:
    """Insert or refresh the patient, study, series and instance rows."""
    params = asdict(record) | {
        "transfer_syntax_uid": transfer_syntax_uid,
        "file_path": file_path,
        "file_size": file_size,
        "calling_ae": calling_ae,
    }
    conn.execute(_UPSERT, params)


def indexed_files(conn: psycopg.Connection) -> list[tuple[str, str, int]]:
    """(sop_instance_uid, file_path, file_size) of every indexed instance, for
    `minipacs verify`."""
    return conn.execute(
        "SELECT sop_instance_uid, file_path, file_size FROM instances ORDER BY file_path"
    ).fetchall()
