"""SQL for the `remote_aes` table: the AEs we may send to (C-MOVE destinations)."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from minipacs.config import RemoteAE

_UPSERT = """
INSERT INTO remote_aes (name, host, port) VALUES (%s, %s, %s)
ON CONFLICT (name) DO UPDATE SET host = EXCLUDED.host, port = EXCLUDED.port
"""


def add(conn: psycopg.Connection, ae: RemoteAE) -> None:
    conn.execute(_UPSERT, (ae.name, ae.host, ae.port))


def add_all(conn: psycopg.Connection, aes: Iterable[RemoteAE]) -> None:
    for ae in aes:
        add(conn, ae)


def get(conn: psycopg.Connection, name: str) -> RemoteAE | None:
    row = conn.execute(
        "SELECT name, host, port FROM remote_aes WHERE name = %s", (name,)
    ).fetchone()
    return RemoteAE(*row) if row else None


def list_all(conn: psycopg.Connection) -> list[RemoteAE]:
    rows = conn.execute("SELECT name, host, port FROM remote_aes ORDER BY name").fetchall()
    return [RemoteAE(*row) for row in rows]


def remove(conn: psycopg.Connection, name: str) -> bool:
    """True when a row was removed."""
    return conn.execute("DELETE FROM remote_aes WHERE name = %s", (name,)).rowcount > 0
