"""Where instances live on the volume, and durable atomic writes."""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path

from minipacs.uids import check_uid

log = logging.getLogger(__name__)

TMP_SUFFIX = ".tmp"


class StorageError(Exception):
    """The volume refused a write (disk full, permissions, I/O error)."""


def instance_path(root: Path, study_uid: str, series_uid: str, sop_uid: str) -> Path:
    """`<root>/<study>/<series>/<sop>.dcm`; every part is checked against the
    UID grammar, so no wire value can climb out of `root`."""
    return (
        root
        / check_uid(study_uid, "StudyInstanceUID")
        / check_uid(series_uid, "SeriesInstanceUID")
        / f"{check_uid(sop_uid, 'SOPInstanceUID')}.dcm"
    )


def relative_path(root: Path, path: Path) -> str:
    """The path as stored in the index: relative to the storage root."""
    return str(path.relative_to(root))


def write_temp(path: Path, data: bytes) -> Path:
    """Write `data` to a fresh temp file beside `path` and fsync it.

    The temp name starts with a dot and ends with TMP_SUFFIX so that readers
    never mistake it for an instance and the start-up sweep can remove it.
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}{TMP_SUFFIX}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        discard(tmp)
        raise StorageError(f"cannot write {tmp}: {exc.strerror or exc}") from exc
    return tmp


def publish(tmp: Path, path: Path) -> None:
    """Atomically move the temp file to its final name and make the rename
    durable by fsyncing the directory."""
    try:
        os.replace(tmp, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StorageError(f"cannot publish {path}: {exc.strerror or exc}") from exc


def discard(path: Path) -> None:
    """Remove a file if it is there; a failure is logged, never raised."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)


def sweep_temp_files(root: Path, min_age_seconds: float) -> int:
    """Remove temp files left by a process that died mid-store; return how many.

    Only files older than `min_age_seconds` go, so a sweep never races a store
    in progress in another listener process sharing the volume.
    """
    removed = 0
    if not root.is_dir():
        return 0
    cutoff = time.time() - min_age_seconds
    for tmp in root.glob(f"*/*/.*{TMP_SUFFIX}"):
        try:
            if tmp.stat().st_mtime > cutoff:
                continue
        except FileNotFoundError:
            continue
        discard(tmp)
        removed += 1
    return removed
