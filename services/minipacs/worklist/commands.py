"""`minipacs worklist add/import/list/remove`: argument parsing helpers and
the commands themselves (cli.py only wires them in)."""

from __future__ import annotations

import argparse
from pathlib import Path

import psycopg

from minipacs.config import Settings
from minipacs.worklist import store
from minipacs.worklist.items import ItemError, NewItem, parse_import, validate

# flag -> NewItem field; required flags first.
ADD_FLAGS = (
    ("--patient-id", "patient_id", True, "ID"),
    ("--patient-name", "patient_name", True, "NAME"),
    ("--birth-date", "birth_date", False, "YYYYMMDD"),
    ("--sex", "sex", False, "M|F|O"),
    ("--accession", "accession", True, "ACC"),
    ("--modality", "modality", True, "MOD"),
    ("--station-ae", "station_ae", False, "AE"),
    ("--date", "date", True, "YYYYMMDD"),
    ("--time", "time", False, "HHMMSS"),
    ("--description", "description", False, "TEXT"),
    ("--requested-procedure-id", "requested_procedure_id", False, "ID"),
    ("--step-id", "step_id", False, "ID"),
    ("--study-uid", "study_uid", False, "UID"),
    ("--requesting-physician", "requesting_physician", False, "NAME"),
    ("--performing-physician", "performing_physician", False, "NAME"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for flag, dest, required, metavar in ADD_FLAGS:
        parser.add_argument(flag, dest=dest, required=required, metavar=metavar)


def _connect(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(settings.database_url, connect_timeout=10)


def add(settings: Settings, args: argparse.Namespace) -> int:
    item = validate(NewItem(**{dest: getattr(args, dest) for _, dest, _, _ in ADD_FLAGS}))
    with _connect(settings) as conn:
        item_id = store.add(conn, item)
    print(item_id)
    return 0


def import_file(settings: Settings, args: argparse.Namespace) -> int:
    """All or nothing: every item is validated first, then all are inserted
    in one transaction."""
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ItemError(f"cannot read {path}: {exc}") from None
    try:
        items = parse_import(text)
    except ItemError as exc:
        raise ItemError(f"{path}: {exc}; nothing imported") from None
    with _connect(settings) as conn:
        ids = store.add_all(conn, items)
    print(f"imported {len(ids)} items" + (f": ids {ids[0]}-{ids[-1]}" if ids else ""))
    return 0


def list_items(settings: Settings, args: argparse.Namespace) -> int:
    with _connect(settings) as conn:
        items = store.list_all(conn)
    print(
        f"{'id':>5}  {'accession':<16}  {'patient':<32}  {'modality':<8}  {'station':<16}  "
        f"{'date/time':<15}  status"
    )
    for it in items:
        patient = f"{it.patient_id} {it.patient_name or ''}".strip()
        when = f"{it.date} {it.time[:6] if it.time else ''}".strip()
        print(
            f"{it.id:>5}  {it.accession_number:<16}  {patient:<32}  {it.modality:<8}  "
            f"{it.station_ae or '':<16}  {when:<15}  {it.status}"
        )
    return 0


def remove(settings: Settings, args: argparse.Namespace) -> int:
    try:
        item_id = int(args.id)
    except ValueError:
        raise ItemError(f"worklist id {args.id!r} is not a number") from None
    with _connect(settings) as conn:
        if not store.remove(conn, item_id):
            raise ItemError(f"no worklist item with id {item_id}")
    print(f"removed {item_id}")
    return 0
