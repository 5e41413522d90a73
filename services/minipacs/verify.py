"""`minipacs verify`: does the index describe exactly the files on the volume?

Reports rows whose file is missing, files no row points to, and files whose
size differs from the indexed one. `--repair` indexes the files no row points
to (the header is read again and upserted like a received instance); it never
deletes a row or a file, since a missing file may only be an unmounted volume.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import psycopg_pool

from minipacs import storage
from minipacs.db import transaction
from minipacs.index import instances
from minipacs.index.record import UnreadableDataset, read_header, record_from_dataset
from minipacs.uids import InvalidUID

log = logging.getLogger(__name__)


@dataclass
class Report:
    rows: int = 0
    files: int = 0
    missing_files: list[str] = field(default_factory=list)  # rows without files
    orphan_files: list[str] = field(default_factory=list)  # files without rows
    size_mismatches: list[tuple[str, int, int]] = field(default_factory=list)  # path, row, disk
    temp_files: list[str] = field(default_factory=list)  # left by an interrupted store
    repaired: list[str] = field(default_factory=list)
    unrepairable: list[tuple[str, str]] = field(default_factory=list)  # path, why

    @property
    def consistent(self) -> bool:
        return not (self.missing_files or self.orphan_files or self.size_mismatches)


def volume_files(root: Path) -> tuple[dict[str, int], list[str]]:
    """Instance files (`<study>/<series>/<sop>.dcm`, relative path -> size)
    and temp files (dot-names) under `root`."""
    files: dict[str, int] = {}
    temps: list[str] = []
    if not root.is_dir():
        return files, temps
    for path in root.glob("*/*/*"):
        if not path.is_file():
            continue
        relative = storage.relative_path(root, path)
        if path.name.startswith("."):
            temps.append(relative)
        elif path.suffix == ".dcm":
            try:
                files[relative] = path.stat().st_size
            except FileNotFoundError:
                continue
    return files, temps


def check(pool: psycopg_pool.ConnectionPool, root: Path) -> Report:
    """Compare the index with the volume; read-only."""
    report = Report()
    with transaction(pool) as conn:
        rows = instances.indexed_files(conn)
    on_disk, report.temp_files = volume_files(root)
    report.rows, report.files = len(rows), len(on_disk)
    indexed = set()
    for _sop, file_path, file_size in rows:
        indexed.add(file_path)
        size = on_disk.get(file_path)
        if size is None:
            report.missing_files.append(file_path)
        elif size != file_size:
            report.size_mismatches.append((file_path, file_size, size))
    report.orphan_files = sorted(set(on_disk) - indexed)
    return report


def repair(pool: psycopg_pool.ConnectionPool, root: Path, report: Report) -> None:
    """Index every orphan file whose header names the place it is stored at."""
    for relative in report.orphan_files:
        path = root / relative
        try:
            part10 = path.read_bytes()
            ds = read_header(part10)
            record = record_from_dataset(ds)
            expected = storage.instance_path(
                root,
                record.study_instance_uid,
                record.series_instance_uid,
                record.sop_instance_uid,
            )
        except (OSError, UnreadableDataset, InvalidUID) as exc:
            report.unrepairable.append((relative, str(exc)))
            continue
        if expected != path:
            report.unrepairable.append((relative, f"its UIDs place it at {expected}"))
            continue
        meta = getattr(ds, "file_meta", None)
        syntax = meta.get("TransferSyntaxUID") if meta is not None else None
        if not syntax:
            report.unrepairable.append((relative, "no TransferSyntaxUID in its file meta"))
            continue
        with transaction(pool) as conn:
            if instances.find_instance(conn, record.sop_instance_uid) is not None:
                report.unrepairable.append((relative, "its SOP instance is indexed elsewhere"))
                continue
            instances.insert_instance(
                conn,
                record,
                transfer_syntax_uid=str(syntax),
                file_path=relative,
                file_size=len(part10),
                calling_ae=None,
            )
        log.info("indexed orphan file %s", relative)
        report.repaired.append(relative)


def run(pool: psycopg_pool.ConnectionPool, root: Path, fix: bool) -> Report:
    """Check; with `fix`, repair what can be and check again."""
    report = check(pool, root)
    if fix and report.orphan_files:
        repair(pool, root, report)
        after = check(pool, root)
        after.repaired, after.unrepairable = report.repaired, report.unrepairable
        report = after
    return report


def render(report: Report) -> str:
    """The report as a user reads it, one problem a line, a summary last."""
    lines = [f"row without file: {p}" for p in report.missing_files]
    lines += [f"file without row: {p}" for p in report.orphan_files]
    lines += [
        f"size mismatch: {p} (index {row} bytes, volume {disk} bytes)"
        for p, row, disk in report.size_mismatches
    ]
    lines += [f"temp file left by an interrupted store: {p}" for p in report.temp_files]
    lines += [f"repaired (indexed): {p}" for p in report.repaired]
    lines += [f"cannot repair {p}: {why}" for p, why in report.unrepairable]
    lines.append(
        f"{report.rows} rows, {report.files} files: "
        f"{len(report.missing_files)} rows without files, "
        f"{len(report.orphan_files)} files without rows, "
        f"{len(report.size_mismatches)} size mismatches"
        + (" - consistent" if report.consistent else " - INCONSISTENT")
    )
    return "\n".join(lines)
