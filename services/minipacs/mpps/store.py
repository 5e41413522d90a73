"""SQL for the `mpps` table."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

_INSERT = """
INSERT INTO mpps (sop_instance_uid, performed_procedure_step_status,
    performed_procedure_step_id, performed_station_ae_title, modality, patient_id,
    patient_name, accession_number, study_instance_uid, scheduled_procedure_step_id,
    performed_procedure_step_start_date, performed_procedure_step_start_time,
    performed_procedure_step_end_date, performed_procedure_step_end_time,
    performed_procedure_step_description, calling_ae, dataset)
VALUES (%(sop_instance_uid)s, %(performed_procedure_step_status)s,
    %(performed_procedure_step_id)s, %(performed_station_ae_title)s, %(modality)s,
    %(patient_id)s, %(patient_name)s, %(accession_number)s, %(study_instance_uid)s,
    %(scheduled_procedure_step_id)s, %(performed_procedure_step_start_date)s,
    %(performed_procedure_step_start_time)s, %(performed_procedure_step_end_date)s,
    %(performed_procedure_step_end_time)s, %(performed_procedure_step_description)s,
    %(calling_ae)s, %(dataset)s)
ON CONFLICT (sop_instance_uid) DO NOTHING
RETURNING id
"""

_UPDATE = """
UPDATE mpps SET performed_procedure_step_status = %(performed_procedure_step_status)s,
    performed_procedure_step_end_date = %(performed_procedure_step_end_date)s,
    performed_procedure_step_end_time = %(performed_procedure_step_end_time)s,
    performed_procedure_step_description = %(performed_procedure_step_description)s,
    dataset = %(dataset)s, updated_at = now()
WHERE id = %(id)s
"""

_LIST = """
SELECT m.id, m.sop_instance_uid, m.performed_procedure_step_status,
    COALESCE(w.accession_number, m.accession_number), m.worklist_fk, m.modality,
    m.performed_station_ae_title, m.created_at, m.updated_at
FROM mpps m LEFT JOIN worklist w ON w.id = m.worklist_fk
ORDER BY m.created_at, m.id
"""


@dataclass(frozen=True)
class StoredStep:
    id: int
    status: str
    dataset: dict  # pydicom's JSON model (Dataset.to_json_dict)


@dataclass(frozen=True)
class ListedStep:
    id: int
    sop_instance_uid: str
    status: str
    accession_number: str | None
    worklist_id: int | None
    modality: str | None
    station_ae: str | None
    created_at: object
    updated_at: object


def insert(
    conn: psycopg.Connection, sop_instance_uid: str, cols: dict, calling_ae: str, dataset: dict
) -> int | None:
    """The new row's id; None when the SOP instance already exists."""
    params = cols | {
        "sop_instance_uid": sop_instance_uid,
        "calling_ae": calling_ae,
        "dataset": Jsonb(dataset),
    }
    row = conn.execute(_INSERT, params).fetchone()
    return int(row[0]) if row else None


def link(conn: psycopg.Connection, mpps_id: int, worklist_id: int) -> None:
    conn.execute("UPDATE mpps SET worklist_fk = %s WHERE id = %s", (worklist_id, mpps_id))


def get_for_update(conn: psycopg.Connection, sop_instance_uid: str) -> StoredStep | None:
    row = conn.execute(
        "SELECT id, performed_procedure_step_status, dataset FROM mpps "
        "WHERE sop_instance_uid = %s FOR UPDATE",
        (sop_instance_uid,),
    ).fetchone()
    return StoredStep(int(row[0]), row[1], row[2]) if row else None


def update(conn: psycopg.Connection, mpps_id: int, cols: dict, dataset: dict) -> None:
    conn.execute(_UPDATE, cols | {"id": mpps_id, "dataset": Jsonb(dataset)})


def list_all(conn: psycopg.Connection) -> list[ListedStep]:
    return [ListedStep(*row) for row in conn.execute(_LIST).fetchall()]
