"""Storing a received instance: durable file first, index rows second,
Success only when both are done (DESIGN.md, "Rules")."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import psycopg
import psycopg_pool

from minipacs import storage
from minipacs.db import DatabaseUnavailable, connection, transaction
from minipacs.index import instances
from minipacs.index.record import (
    InstanceRecord,
    UnreadableDataset,
    read_header,
    record_from_dataset,
)
from minipacs.status import Status
from minipacs.uids import InvalidUID

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Archive:
    pool: psycopg_pool.ConnectionPool
    storage_dir: Path
    duplicate_policy: str  # keep | overwrite | reject


@dataclass(frozen=True)
class StoreRequest:
    part10: bytes  # preamble, file meta and dataset, exactly as received
    sop_class_uid: str  # from the C-STORE request
    sop_instance_uid: str
    transfer_syntax_uid: str
    calling_ae: str
    context_sop_class_uid: str | None = None  # abstract syntax of the presentation context


@dataclass(frozen=True)
class StoreResult:
    status: Status
    comment: str | None = None
    duplicate: bool = False


def store_instance(archive: Archive, request: StoreRequest) -> StoreResult:
    """Validate, write durably, index; map every expected failure to a status."""
    try:
        return _store(archive, request)
    except UnreadableDataset as exc:
        return StoreResult(Status.CANNOT_UNDERSTAND, str(exc))
    except InvalidUID as exc:
        return StoreResult(Status.INVALID_UID, str(exc))
    except storage.StorageError as exc:
        log.error("C-STORE %s: storage failure: %s", request.sop_instance_uid, exc)
        return StoreResult(Status.OUT_OF_RESOURCES, f"storage failure: {exc}")
    except DatabaseUnavailable as exc:
        log.error("C-STORE %s: database unavailable: %s", request.sop_instance_uid, exc)
        return StoreResult(Status.OUT_OF_RESOURCES, "index database unavailable")
    except psycopg.Error as exc:
        log.exception("C-STORE %s: index write failed", request.sop_instance_uid)
        return StoreResult(Status.OUT_OF_RESOURCES, f"index write failed: {type(exc).__name__}")


def _store(archive: Archive, request: StoreRequest) -> StoreResult:
    if request.context_sop_class_uid not in (None, request.sop_class_uid):
        return StoreResult(
            Status.DATASET_DOES_NOT_MATCH_SOP_CLASS,
            f"presentation context is {request.context_sop_class_uid}, "
            f"request SOP Class {request.sop_class_uid}",
        )
    record = record_from_dataset(read_header(request.part10, request.transfer_syntax_uid))
    if record.sop_instance_uid != request.sop_instance_uid:
        log.warning(
            "C-STORE: dataset SOPInstanceUID %s, request says %s",
            record.sop_instance_uid,
            request.sop_instance_uid,
        )
        return StoreResult(
            Status.SOP_INSTANCE_MISMATCH, "SOPInstanceUID differs from the request's"
        )
    if record.sop_class_uid != request.sop_class_uid:
        log.warning(
            "C-STORE: dataset SOPClassUID %s, request says %s",
            record.sop_class_uid,
            request.sop_class_uid,
        )
        return StoreResult(
            Status.DATASET_DOES_NOT_MATCH_SOP_CLASS, "SOPClassUID differs from the request's"
        )

    path = storage.instance_path(
        archive.storage_dir,
        record.study_instance_uid,
        record.series_instance_uid,
        record.sop_instance_uid,
    )
    replacing = None
    if archive.duplicate_policy == "overwrite":
        with connection(archive.pool) as conn:
            replacing = instances.find_instance(conn, record.sop_instance_uid)
    # Under keep and reject, the index finds an earlier copy while inserting
    # (no extra round trip for the common case of a new instance).
    indexed = _write_and_index(archive, request, record, path, replacing is not None)
    earlier = replacing or indexed
    if earlier is not None:
        _note_resent(request, record, earlier)
    if indexed is not None:
        if archive.duplicate_policy == "reject":
            return StoreResult(
                Status.DUPLICATE_REJECTED, "SOP instance already archived (policy reject)"
            )
        return StoreResult(Status.SUCCESS, duplicate=True)
    if replacing is not None:
        old = archive.storage_dir / replacing.file_path
        if old != path:
            storage.discard(old)
    return StoreResult(Status.SUCCESS, duplicate=replacing is not None)


def _note_resent(
    request: StoreRequest, record: InstanceRecord, earlier: instances.StoredInstance
) -> None:
    if (earlier.study_instance_uid, earlier.series_instance_uid) != (
        record.study_instance_uid,
        record.series_instance_uid,
    ):
        log.warning(
            "SOP instance %s re-sent by %s under study %s series %s; indexed under "
            "study %s series %s",
            record.sop_instance_uid,
            request.calling_ae,
            record.study_instance_uid,
            record.series_instance_uid,
            earlier.study_instance_uid,
            earlier.series_instance_uid,
        )


def _write_and_index(
    archive: Archive, request: StoreRequest, record: InstanceRecord, path: Path, replace: bool
) -> instances.StoredInstance | None:
    """Write and index one instance; nothing new is left behind on failure.

    The temp file is written and fsynced while the server executes the insert
    of the index rows; then, in the same transaction, the file gets its final
    name + directory fsync, and commit; then the temp name goes. Never a row
    without its file; a crash between publishing and commit leaves a file
    that the next start removes (storage.sweep_temp_files). When the instance
    is indexed already and not to be replaced, nothing is kept and its
    indexed copy is returned.
    """
    tmp: Path | None = None

    def write_temp() -> None:
        nonlocal tmp
        tmp = storage.write_temp(path, request.part10)

    published = False
    existed = True  # until known, a failure must not remove the final path
    indexed = None
    try:
        with transaction(archive.pool, pipeline=True) as conn:
            indexed = instances.insert_instance(
                conn,
                record,
                transfer_syntax_uid=request.transfer_syntax_uid,
                file_path=storage.relative_path(archive.storage_dir, path),
                file_size=len(request.part10),
                calling_ae=request.calling_ae,
                replace=replace,
                while_waiting=write_temp,
            )
            if indexed is not None:
                raise psycopg.Rollback()  # with any parent rows the insert added
            assert tmp is not None
            # Looked at only now: the insert holds this instance's row (or
            # unique-index entry) until commit, so a concurrent store of the
            # same instance has either committed its file already or waits.
            # Looked at before, a failed commit here could delete the file of
            # a store that was answered Success meanwhile.
            existed = path.exists()
            storage.publish(tmp, path)
            published = True
    except BaseException:
        if published and not existed:
            storage.discard(path)
        raise
    finally:
        # Last: until the commit, the temp name marks the published file as
        # not indexed yet, should the process die (storage.sweep_temp_files).
        if tmp is not None:
            storage.discard(tmp)
    return indexed
