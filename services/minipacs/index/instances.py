"""SQL for the patients/studies/series/instances tables (writes and lookups)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

import psycopg

from minipacs.index.record import InstanceRecord

# One round trip stores an instance. Patient, study and series rows are
# created by the first instance that names them and then only read: ON
# CONFLICT DO NOTHING takes no row lock, so any number of associations store
# into one series at once without queueing behind each other's commits. (DO
# UPDATE would lock the parent rows until commit, even when nothing changes.)
# Their attribute values are those of the first instance received, as in
# Orthanc; a study or series never moves to another parent.
#
# A parent inserted by a concurrent transaction that commits while this
# statement runs is invisible to the statement's snapshot: the statement then
# stores nothing and returns no row, and the caller runs it again. An instance
# row that exists already is replaced, or (_INSERT_NEW) left alone: no row is
# returned then either.
_PARENTS_AND_INSTANCE = """
WITH p_new AS (
    INSERT INTO patients (patient_id, patient_name, patient_birth_date, patient_sex)
    VALUES (%(patient_id)s, %(patient_name)s, %(patient_birth_date)s, %(patient_sex)s)
    ON CONFLICT (patient_id) DO NOTHING
    RETURNING id
), p AS (
    SELECT id FROM p_new
    UNION ALL
    SELECT id FROM patients WHERE patient_id = %(patient_id)s
), st_new AS (
    INSERT INTO studies (patient_fk, study_instance_uid, study_date, study_time,
        accession_number, study_description, referring_physician_name, study_id)
    SELECT p.id, %(study_instance_uid)s, %(study_date)s, %(study_time)s,
        %(accession_number)s, %(study_description)s, %(referring_physician_name)s,
        %(study_id)s
    FROM p
    ON CONFLICT (study_instance_uid) DO NOTHING
    RETURNING id
), st AS (
    SELECT id FROM st_new
    UNION ALL
    SELECT id FROM studies WHERE study_instance_uid = %(study_instance_uid)s
), se_new AS (
    INSERT INTO series (study_fk, series_instance_uid, modality, series_number,
        series_description, body_part_examined)
    SELECT st.id, %(series_instance_uid)s, %(modality)s, %(series_number)s,
        %(series_description)s, %(body_part_examined)s
    FROM st
    ON CONFLICT (series_instance_uid) DO NOTHING
    RETURNING id
), se AS (
    SELECT id FROM se_new
    UNION ALL
    SELECT id FROM series WHERE series_instance_uid = %(series_instance_uid)s
)
INSERT INTO instances (series_fk, sop_instance_uid, sop_class_uid, instance_number,
    transfer_syntax_uid, file_path, file_size, calling_ae)
SELECT se.id, %(sop_instance_uid)s, %(sop_class_uid)s, %(instance_number)s,
    %(transfer_syntax_uid)s, %(file_path)s, %(file_size)s, %(calling_ae)s
FROM se
"""

_INSERT_NEW = (
    _PARENTS_AND_INSTANCE
    + """
ON CONFLICT (sop_instance_uid) DO NOTHING
RETURNING id
"""
)

_UPSERT = (
    _PARENTS_AND_INSTANCE
    + """
ON CONFLICT (sop_instance_uid) DO UPDATE SET
    series_fk = EXCLUDED.series_fk,
    sop_class_uid = EXCLUDED.sop_class_uid,
    instance_number = EXCLUDED.instance_number,
    transfer_syntax_uid = EXCLUDED.transfer_syntax_uid,
    file_path = EXCLUDED.file_path,
    file_size = EXCLUDED.file_size,
    calling_ae = EXCLUDED.calling_ae,
    received_at = now()
RETURNING id
"""
)

# Each retry sees every parent committed before it started; two concurrent
# creators of one parent cannot both miss each other's row more than once.
_UPSERT_ATTEMPTS = 3


class IndexRace(Exception):
    """The rows could not be written after several attempts (should not happen)."""


# When a copy replaces an earlier one (PACS_DUPLICATE_POLICY=overwrite), its
# values replace the parents' too, where it has them.
_REFRESH_PARENTS = """
WITH se AS (
    UPDATE series SET
        modality = COALESCE(%(modality)s, modality),
        series_number = COALESCE(%(series_number)s, series_number),
        series_description = COALESCE(%(series_description)s, series_description),
        body_part_examined = COALESCE(%(body_part_examined)s, body_part_examined),
        updated_at = now()
    WHERE series_instance_uid = %(series_instance_uid)s
    RETURNING study_fk
), st AS (
    UPDATE studies SET
        study_date = COALESCE(%(study_date)s, study_date),
        study_time = COALESCE(%(study_time)s, study_time),
        accession_number = COALESCE(%(accession_number)s, accession_number),
        study_description = COALESCE(%(study_description)s, study_description),
        referring_physician_name = COALESCE(%(referring_physician_name)s,
                                            referring_physician_name),
        study_id = COALESCE(%(study_id)s, study_id),
        updated_at = now()
    WHERE id IN (SELECT study_fk FROM se)
    RETURNING patient_fk
)
UPDATE patients SET
    patient_name = COALESCE(%(patient_name)s, patient_name),
    patient_birth_date = COALESCE(%(patient_birth_date)s, patient_birth_date),
    patient_sex = COALESCE(%(patient_sex)s, patient_sex),
    updated_at = now()
WHERE id IN (SELECT patient_fk FROM st)
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


def insert_instance(
    conn: psycopg.Connection,
    record: InstanceRecord,
    *,
    transfer_syntax_uid: str,
    file_path: str,
    file_size: int,
    calling_ae: str | None,
    replace: bool = False,
    while_waiting: Callable[[], object] | None = None,
) -> StoredInstance | None:
    """Insert the patient, study and series rows if new, and the instance row.

    An instance indexed already is replaced when `replace` is set (its values
    are copied into the parent rows too) and None is returned. Otherwise
    nothing of it changes and its indexed copy is returned: the caller then
    rolls back, as the statement may have added parent rows for it.

    `while_waiting` is called once, after the statement is sent and before its
    result is read: on a pipelined connection (db.transaction) it runs while
    the server executes the statement.
    """
    params = vars(record) | {  # a shallow copy: asdict() deep-copies every value
        "transfer_syntax_uid": transfer_syntax_uid,
        "file_path": file_path,
        "file_size": file_size,
        "calling_ae": calling_ae,
    }
    for _ in range(_UPSERT_ATTEMPTS):
        cursor = conn.execute(_UPSERT if replace else _INSERT_NEW, params)
        if while_waiting is not None:
            while_waiting()
            while_waiting = None
        if cursor.fetchone():
            if replace:
                conn.execute(_REFRESH_PARENTS, params)
            return None
        if not replace and (existing := find_instance(conn, record.sop_instance_uid)):
            return existing
    raise IndexRace(f"could not index {record.sop_instance_uid}: parent rows kept vanishing")


def committed_files(conn: psycopg.Connection, file_paths: list[str]) -> set[str]:
    """Those of `file_paths` (relative to the storage root, named after their
    SOP Instance UID) that instance rows point at."""
    sop_uids = [PurePosixPath(path).name.removesuffix(".dcm") for path in file_paths]
    rows = conn.execute(
        "SELECT file_path FROM instances WHERE sop_instance_uid = ANY(%s)", (sop_uids,)
    ).fetchall()
    return {row[0] for row in rows} & set(file_paths)


def indexed_files(conn: psycopg.Connection) -> list[tuple[str, str, int]]:
    """(sop_instance_uid, file_path, file_size) of every indexed instance, for
    `minipacs verify`."""
    return conn.execute(
        "SELECT sop_instance_uid, file_path, file_size FROM instances ORDER BY file_path"
    ).fetchall()
