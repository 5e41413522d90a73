"""The PostgreSQL connection pool shared by all threads of a process."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from weakref import WeakKeyDictionary

import psycopg
import psycopg_pool

log = logging.getLogger(__name__)

# A connection back in the pool for longer than this is pinged before it is
# lent again (PostgreSQL may have restarted meanwhile); one in steady use is not,
# which saves a round trip per operation on the hot paths.
IDLE_CHECK_SECONDS = 2.0

_returned_at: WeakKeyDictionary[psycopg.Connection, float] = WeakKeyDictionary()


class DatabaseUnavailable(Exception):
    """PostgreSQL could not be reached or failed mid-transaction."""


def _note_return(conn: psycopg.Connection) -> None:
    _returned_at[conn] = time.monotonic()


def _check_if_idle(conn: psycopg.Connection) -> None:
    if time.monotonic() - _returned_at.get(conn, 0.0) > IDLE_CHECK_SECONDS:
        psycopg_pool.ConnectionPool.check_connection(conn)


def create_pool(url: str, size: int, timeout: float, name: str) -> psycopg_pool.ConnectionPool:
    """Open a pool of autocommit connections that recovers by itself after
    PostgreSQL restarts. Does not wait for PostgreSQL to be up.

    `reconnect_timeout` is kept as short as a request's wait: psycopg_pool
    retries a lost connection with doubling delays (1, 2, 4 ... 128 s) for
    `reconnect_timeout` (default 5 min), so after a long outage the pool
    would keep failing requests for minutes while the database is back. Giving
    up early lets the next request start a fresh attempt at once."""
    pool = psycopg_pool.ConnectionPool(
        url,
        min_size=1,
        max_size=size,
        timeout=timeout,
        name=name,
        open=False,
        check=_check_if_idle,
        reset=_note_return,
        reconnect_timeout=timeout,
        kwargs={
            "autocommit": True,
            "connect_timeout": max(1, int(timeout)),
            "application_name": name,
        },
    )
    pool.open(wait=False)
    return pool


_ERRORS = (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg.InterfaceError)


@contextmanager
def connection(pool: psycopg_pool.ConnectionPool) -> Iterator[psycopg.Connection]:
    """Lend an autocommit connection: each statement commits on its own.
    Database trouble of any kind becomes DatabaseUnavailable."""
    try:
        with pool.connection() as conn:
            yield conn
    except _ERRORS as exc:
        raise DatabaseUnavailable(str(exc).strip() or type(exc).__name__) from exc


@contextmanager
def transaction(
    pool: psycopg_pool.ConnectionPool, pipeline: bool = False
) -> Iterator[psycopg.Connection]:
    """Lend a connection inside one transaction; database trouble of any kind
    (unreachable, pool exhausted, connection lost) becomes DatabaseUnavailable.
    `pipeline` sends BEGIN together with the first statement (libpq pipeline
    mode), saving a round trip; statements whose results are not fetched are
    sent on together too."""
    try:
        with (
            pool.connection() as conn,
            conn.pipeline() if pipeline else nullcontext(),
            conn.transaction(),
        ):
            yield conn
    except _ERRORS as exc:
        raise DatabaseUnavailable(str(exc).strip() or type(exc).__name__) from exc
