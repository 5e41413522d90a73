"""Operation counters, persisted in the `statistics` table so they survive
restarts and add up across listener processes.

Operations count in memory; a background thread adds the counts to the table
once a second and at shutdown, so counting costs no database round trip on
the hot paths.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

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

FLUSH_INTERVAL_SECONDS = 1.0

_ADD = """
INSERT INTO statistics (name, value) VALUES (%s, %s)
ON CONFLICT (name) DO UPDATE SET value = statistics.value + EXCLUDED.value
"""


class Statistics:
    """Counts operations and flushes them to PostgreSQL in the background."""

    def __init__(self, pool: psycopg_pool.ConnectionPool) -> None:
        self._pool = pool
        self._pending: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="statistics", daemon=True)

    def start(self) -> Statistics:
        self._thread.start()
        return self

    def increment(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._pending[name] += by

    def flush(self) -> None:
        """Add the pending counts to the table; kept for the next flush when
        PostgreSQL is unavailable (statistics never fail an operation)."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
        if not pending:
            return
        try:
            with transaction(self._pool) as conn:
                for name in sorted(pending):  # one lock order for every process
                    conn.execute(_ADD, (name, pending[name]))
        except DatabaseUnavailable as exc:
            log.warning("statistics: flush postponed: %s", exc)
            with self._lock:
                self._pending.update(pending)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_SECONDS):
            self.flush()


def increment(pool: psycopg_pool.ConnectionPool, name: str, by: int = 1) -> None:
    """Add to a counter now, in its own transaction: for counts that come in
    batches (a job's instances). Logged and dropped when PostgreSQL is down."""
    try:
        with transaction(pool) as conn:
            conn.execute(_ADD, (name, by))
    except DatabaseUnavailable as exc:
        log.warning("statistics: could not count %s: %s", name, exc)


def read_all(pool: psycopg_pool.ConnectionPool) -> dict[str, int]:
    """Every known counter (0 when never counted) plus any other stored one."""
    with transaction(pool) as conn:
        rows = conn.execute("SELECT name, value FROM statistics").fetchall()
    counts = dict.fromkeys(COUNTERS, 0)
    counts.update({name: int(value) for name, value in rows})
    return counts
