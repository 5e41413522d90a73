"""Where instances live on the volume, and durable atomic writes."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from minipacs.db import DatabaseUnavailable
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


def _temp_path(path: Path) -> Path:
    """A fresh temp name beside `path`: `.<name>.<32 hex>.tmp`. It starts with
    a dot and ends with TMP_SUFFIX so that readers never mistake it for an
    instance and the start-up sweep can find it."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}{TMP_SUFFIX}")


def _final_path(tmp: Path) -> Path | None:
    """The instance path a temp name was made for (inverse of _temp_path)."""
    name = tmp.name
    if not (name.startswith(".") and name.endswith(TMP_SUFFIX)):
        return None
    stem = name[1 : -len(TMP_SUFFIX)]
    final, dot, token = stem.rpartition(".")
    return tmp.with_name(final) if dot and len(token) == 32 and final else None


def write_temp(path: Path, data: bytes) -> Path:
    """Write `data` to a fresh temp file beside `path` and fsync it.

    The file's pages are then dropped from the page cache: an archive writes
    far more than it reads back soon, and keeping every new instance cached
    would push out what is read (the index, recent studies) and, on a host
    whose memory is not yet in use, costs a fresh page per 4 KiB written
    (measured: 4.0 instead of 6.8 ms of listener CPU per 512 KiB image).
    """
    tmp = _temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    except OSError as exc:
        discard(tmp)
        raise StorageError(f"cannot write {tmp}: {exc.strerror or exc}") from exc
    return tmp


def publish(tmp: Path, path: Path) -> None:
    """Give the fsynced temp file its final name, atomically, and make that
    durable by fsyncing the directory.

    The final name is a second link to the file: the temp name stays until
    the caller has committed the index rows and discards it. A process that
    dies in between leaves both names on one file, which is how
    sweep_temp_files tells a published but never indexed file from a
    committed one.
    """
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            # An earlier copy (PACS_DUPLICATE_POLICY=overwrite) or a file left
            # without a row: replace it atomically through a second temp name.
            staged = _temp_path(path)
            os.link(tmp, staged)
            os.replace(staged, path)
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


@dataclass
class Sweep:
    removed: int = 0  # temp files of stores that never published
    rolled_back: int = 0  # published files whose index rows were never committed
    pending: int = 0  # published files left alone: the index could not be asked


def sweep_temp_files(
    root: Path, min_age_seconds: float, committed: Callable[[list[Path]], set[Path]]
) -> Sweep:
    """Clean up after a process that died mid-store.

    A plain temp file goes. A temp file that shares its inode with its final
    path was published; `committed(paths)` tells which of those final paths
    the index holds: for those only the temp name goes, the others (never
    answered Success) are removed with their temp name. When `committed`
    raises DatabaseUnavailable they are left for the next start.

    Only files older than `min_age_seconds` are looked at, so a sweep never
    races a store in progress in another listener process sharing the volume.
    """
    sweep = Sweep()
    if not root.is_dir():
        return sweep
    cutoff = time.time() - min_age_seconds
    published: list[tuple[Path, Path]] = []
    for tmp in root.glob(f"*/*/.*{TMP_SUFFIX}"):
        try:
            if tmp.stat().st_mtime > cutoff:
                continue
            final = _final_path(tmp)
            if final is not None and final.exists() and os.path.samefile(tmp, final):
                published.append((tmp, final))
                continue
        except FileNotFoundError:
            continue
        discard(tmp)
        sweep.removed += 1
    if not published:
        return sweep
    try:
        indexed = committed([final for _, final in published])
    except DatabaseUnavailable as exc:
        log.warning("left %d published files to the next start: %s", len(published), exc)
        sweep.pending = len(published)
        return sweep
    for tmp, final in published:
        if final not in indexed:
            discard(final)
            sweep.rolled_back += 1
        discard(tmp)
    return sweep
