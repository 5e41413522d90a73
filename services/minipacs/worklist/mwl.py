"""Answering a Modality Worklist C-FIND from the `worklist` table."""

from __future__ import annotations

import psycopg_pool
from pydicom.dataset import Dataset

from minipacs.db import transaction
from minipacs.worklist import matching, store


def find(pool: psycopg_pool.ConnectionPool, identifier: Dataset) -> list[Dataset]:
    """Response identifiers for every matching step, in schedule order.
    Raises matching.QueryError for a malformed key, DatabaseUnavailable."""
    sql, params = matching.build_query(identifier)
    with transaction(pool) as conn:
        rows = store.search(conn, sql, params)
    return [matching.response(identifier, row) for row in rows]
