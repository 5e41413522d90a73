"""Operation counters, persisted in the `statistics` table so they survive
restarts and add up across listener processes."""

from __future__ import annotations

import logging

import psycopg_pool

from minipacs.db import DatabaseUnavailable, transaction

log = logging.getLogger(__name__)

COUNTERS = (
    "c_echo_count",
    "c_store_count",
    "c_find_count",
    "c_move_count",
    "c_get_count",
    "mwl_count",
    "n_create_count",
    "n_set_count",
    "instances_sent",  # C-MOVE and C-GET sub-operations that succeeded
    "instances_failed",  # ... and that failed
)

_INCREMENT = """
INSERT INTO statistics (name, value) VALUES (%s, %s)
ON CONFLICT (name) DO UPDATE SET value = statistics.value + EXCLUDED.value
"""


def increment(pool: psycopg_pool.ConnectionPool, name: str, by: int = 1) -> None:
    """Add `by` to a counter in its own short transaction. A counter that
    cannot be written is logged and dropped: statistics never fail an operation."""
    try:
        with transaction(pool) as conn:
            conn.execute(_INCREMENT, (name, by))
    except DatabaseUnavailable as exc:
        log.warning("statistics: could not count %s: %s", name, exc)


def read_all(pool: psycopg_pool.ConnectionPool) -> dict[str, int]:
    """Every known counter (0 when never counted) plus any other stored one."""
    with transaction(pool) as conn:
        rows = conn.execute("SELECT name, value FROM statistics").fetchall()
    counts = dict.fromkeys(COUNTERS, 0)
    counts.update({name: int(value) for name, value in rows})
    return counts
