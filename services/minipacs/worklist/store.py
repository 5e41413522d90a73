"""SQL for the `worklist` table: one row per Scheduled Procedure Step."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row
from pydicom.uid import generate_uid

from minipacs.worklist.items import NewItem

STATUSES = ("SCHEDULED", "IN PROGRESS", "COMPLETED", "DISCONTINUED")

# The step id defaults to the row id (unique), the requested procedure id to
# the accession number: both are required (type 1) in MWL responses.
_INSERT = """
WITH n AS (SELECT nextval(pg_get_serial_sequence('worklist', 'id')) AS id)
INSERT INTO worklist (id, patient_id, patient_name, patient_birth_date, patient_sex,
    accession_number, requesting_physician, requested_procedure_id,
    requested_procedure_description, study_instance_uid, scheduled_procedure_step_id,
    modality, scheduled_station_ae_title, scheduled_procedure_step_start_date,
    scheduled_procedure_step_start_time, scheduled_procedure_step_description,
    scheduled_performing_physician_name)
SELECT n.id, %(patient_id)s, %(patient_name)s, %(birth_date)s, %(sex)s,
    %(accession)s, %(requesting_physician)s,
    COALESCE(%(requested_procedure_id)s, %(accession)s),
    %(description)s, %(study_uid)s, COALESCE(%(step_id)s, n.id::text),
    %(modality)s, %(station_ae)s, %(date)s, %(time)s, %(description)s,
    %(performing_physician)s
FROM n
RETURNING id
"""

_LIST = """
SELECT id, accession_number, patient_id, patient_name, modality,
    scheduled_station_ae_title, scheduled_procedure_step_start_date,
    scheduled_procedure_step_start_time, scheduled_procedure_step_status
FROM worklist
ORDER BY scheduled_procedure_step_start_date, scheduled_procedure_step_start_time NULLS FIRST, id
"""


@dataclass(frozen=True)
class ListedItem:
    id: int
    accession_number: str
    patient_id: str
    patient_name: str | None
    modality: str
    station_ae: str | None
    date: str
    time: str | None
    status: str


def add(conn: psycopg.Connection, item: NewItem) -> int:
    """Insert a validated item; returns its id. A missing study UID is generated."""
    params = {f: getattr(item, f) for f in item.__dataclass_fields__}
    params["study_uid"] = item.study_uid or generate_uid()
    row = conn.execute(_INSERT, params).fetchone()
    assert row is not None
    return int(row[0])


def add_all(conn: psycopg.Connection, items: Iterable[NewItem]) -> list[int]:
    """Insert several items (the caller's transaction makes it all-or-nothing)."""
    return [add(conn, item) for item in items]


def list_all(conn: psycopg.Connection) -> list[ListedItem]:
    return [ListedItem(*row) for row in conn.execute(_LIST).fetchall()]


def remove(conn: psycopg.Connection, item_id: int) -> bool:
    """True when a row was removed (MPPS rows pointing at it keep their data)."""
    return conn.execute("DELETE FROM worklist WHERE id = %s", (item_id,)).rowcount > 0


def search(conn: psycopg.Connection, sql: str, params: list) -> list[dict]:
    """Rows of a query built by `matching.build_query` (bound parameters only)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, params).fetchall()


def lock_linked(
    conn: psycopg.Connection,
    study_instance_uid: str,
    accession_number: str | None,
    requested_procedure_id: str | None,
    step_id: str | None,
) -> list[int]:
    """Ids of the steps a Scheduled Step Attributes item names, locked for the
    caller's transaction. Empty identifiers (type 2) do not narrow the match."""
    sql = "SELECT id FROM worklist WHERE study_instance_uid = %s"
    params: list = [study_instance_uid]
    for column, value in (
        ("accession_number", accession_number),
        ("requested_procedure_id", requested_procedure_id),
        ("scheduled_procedure_step_id", step_id),
    ):
        if value:
            sql += f" AND {column} = %s"
            params.append(value)
    rows = conn.execute(sql + " ORDER BY id FOR UPDATE", params).fetchall()
    return [int(row[0]) for row in rows]


def set_status(conn: psycopg.Connection, item_id: int, status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown step status {status!r}")
    conn.execute(
        "UPDATE worklist SET scheduled_procedure_step_status = %s, updated_at = now() "
        "WHERE id = %s",
        (status, item_id),
    )
