"""The PostgreSQL connection pool shared by all threads of a process."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import psycopg_pool

log = logging.getLogger(__name__)


class DatabaseUnavailable(Exception):
    """PostgreSQL could not be reached or failed mid-transaction."""


def create_pool(url: str, size: int, timeout: float, name: str) -> psycopg_pool.ConnectionPool:
    """Open a pool that checks connections before lending them, so it recovers
    by itself after PostgreSQL restarts. Does not wait for PostgreSQL to be up.

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
        reconnect_timeout=timeout,
        name=name,
        open=False,
        check=psycopg_pool.ConnectionPool.check_connection,
        kwargs={"connect_timeout": max(1, int(timeout)), "application_name": name},
    )
    pool.open(wait=False)
    return pool


@contextmanager
def transaction(pool: psycopg_pool.ConnectionPool) -> Iterator[psycopg.Connection]:
    """Lend a connection inside one transaction; database trouble of any kind
    (unreachable, pool exhausted, connection lost) becomes DatabaseUnavailable."""
    try:
        with pool.connection() as conn, conn.transaction():
            yield conn
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg.InterfaceError) as exc:
        raise DatabaseUnavailable(str(exc).strip() or type(exc).__name__) from exc
