"""`minipacs mpps list`."""

from __future__ import annotations

import argparse
import datetime

import psycopg

from minipacs.config import Settings
from minipacs.mpps import store


def _when(value: object) -> str:
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return str(value or "")


def list_steps(settings: Settings, args: argparse.Namespace) -> int:
    with psycopg.connect(settings.database_url, connect_timeout=10) as conn:
        steps = store.list_all(conn)
    print(
        f"{'id':>5}  {'sop instance uid':<64}  {'status':<12}  {'accession':<16}  "
        f"{'worklist':>8}  {'modality':<8}  {'created (UTC)':<19}  updated (UTC)"
    )
    for s in steps:
        print(
            f"{s.id:>5}  {s.sop_instance_uid:<64}  {s.status:<12}  {s.accession_number or '':<16}  "
            f"{s.worklist_id if s.worklist_id is not None else '-':>8}  {s.modality or '':<8}  "
            f"{_when(s.created_at):<19}  {_when(s.updated_at)}"
        )
    return 0
