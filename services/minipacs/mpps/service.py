"""N-CREATE and N-SET of MPPS instances: the rules, the `mpps` row and the
linked worklist step's status, all in one transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
import psycopg_pool
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from minipacs.db import transaction
from minipacs.mpps import rules, store
from minipacs.status import Status
from minipacs.uids import is_valid_uid
from minipacs.worklist import store as worklist_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: Status
    comment: str | None = None
    tags: tuple[int, ...] = ()
    sop_instance_uid: str | None = None
    worklist_ids: tuple[int, ...] = ()


def _refused(problem: rules.Problem) -> Outcome:
    return Outcome(problem.status, problem.comment, problem.tags)


def create(
    pool: psycopg_pool.ConnectionPool, sop_instance_uid: str | None, ds: Dataset, calling_ae: str
) -> Outcome:
    """F.7.2.1 N-CREATE: a new step IN PROGRESS; its scheduled steps go IN
    PROGRESS too. A request without an instance UID gets a generated one."""
    if sop_instance_uid is not None and not is_valid_uid(sop_instance_uid):
        return Outcome(Status.INVALID_OBJECT_INSTANCE, f"{sop_instance_uid!r} is not a UID"[:64])
    problem = rules.check_create(ds)
    if problem is not None:
        return _refused(problem)
    uid = sop_instance_uid or generate_uid()
    with transaction(pool) as conn:
        mpps_id = store.insert(conn, uid, rules.columns(ds), calling_ae, ds.to_json_dict())
        if mpps_id is None:
            return Outcome(Status.DUPLICATE_SOP_INSTANCE, f"MPPS {uid} already exists"[:64])
        linked = _follow(conn, ds, rules.IN_PROGRESS)
        if linked:
            store.link(conn, mpps_id, linked[0])
    return Outcome(Status.SUCCESS, sop_instance_uid=uid, worklist_ids=tuple(linked))


def set_(
    pool: psycopg_pool.ConnectionPool, sop_instance_uid: str, modification: Dataset
) -> Outcome:
    """F.7.2.2 N-SET: update a step still IN PROGRESS; a final status is
    passed on to its scheduled steps."""
    with transaction(pool) as conn:
        stored = store.get_for_update(conn, sop_instance_uid)
        if stored is None:
            return Outcome(Status.NO_SUCH_SOP_INSTANCE, f"no MPPS {sop_instance_uid}"[:64])
        if stored.status in rules.FINAL:
            return Outcome(Status.PROCESSING_FAILURE, rules.NO_LONGER_UPDATABLE)
        merged = rules.apply_set(Dataset.from_json(stored.dataset), modification)
        if isinstance(merged, rules.Problem):
            return _refused(merged)
        store.update(conn, stored.id, rules.columns(merged), merged.to_json_dict())
        status = str(merged.PerformedProcedureStepStatus)
        linked = _follow(conn, merged, status) if status != stored.status else []
    return Outcome(Status.SUCCESS, sop_instance_uid=sop_instance_uid, worklist_ids=tuple(linked))


def _follow(conn: psycopg.Connection, ds: Dataset, status: str) -> list[int]:
    """Set every scheduled step the MPPS names to `status`; a reference that
    matches no step, or several, links nothing (an unscheduled procedure)."""
    linked: list[int] = []
    for ref in rules.step_refs(ds):
        ids = worklist_store.lock_linked(
            conn,
            ref.study_instance_uid,
            ref.accession_number,
            ref.requested_procedure_id,
            ref.step_id,
        )
        if len(ids) == 1:
            worklist_store.set_status(conn, ids[0], status)
            linked.append(ids[0])
        elif ids:
            log.warning("MPPS reference %s matches %d worklist steps; not linked", ref, len(ids))
    return linked
