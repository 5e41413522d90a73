"""Running a compiled C-FIND query: a server-side cursor streams the rows, so
memory stays flat however many studies match, and a cap bounds the answer."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import psycopg
import psycopg_pool

from minipacs.db import DatabaseUnavailable, transaction
from minipacs.index.matching import FindQuery

log = logging.getLogger(__name__)

FETCH_ROWS = 500  # rows per round trip of the server-side cursor


def stream_matches(
    pool: psycopg_pool.ConnectionPool, query: FindQuery, max_results: int
) -> Iterator[tuple]:
    """Yield at most `max_results` matching rows; log a warning when more
    exist. Closing the generator early (C-CANCEL) closes the cursor and ends
    the transaction."""
    sql = f"{query.sql} LIMIT %s"
    params = [*query.params, max_results + 1]
    with transaction(pool) as conn:
        # The query is read-only; a cancelled or slow SCU must not hold locks.
        conn.execute("SET TRANSACTION READ ONLY")
        try:
            with conn.cursor(name="c_find") as cursor:
                cursor.itersize = FETCH_ROWS
                cursor.execute(sql, params)
                for count, row in enumerate(cursor, start=1):
                    if count > max_results:
                        log.warning(
                            "C-FIND %s query matched more than PACS_FIND_MAX_RESULTS=%d; "
                            "answering the first %d",
                            query.level,
                            max_results,
                            max_results,
                        )
                        return
                    yield row
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise DatabaseUnavailable(str(exc).strip() or type(exc).__name__) from exc
