"""Alembic environment: plain SQL migrations against DATABASE_URL.

DATABASE_URL may be a URL or a libpq key=value string: psycopg connects, and
SQLAlchemy (which alembic needs) only wraps that connection.
"""

from __future__ import annotations

import os

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool


def _conninfo() -> str:
    return context.config.get_main_option("sqlalchemy.url") or os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/minipacs"
    )


def run_migrations_online() -> None:
    engine = create_engine(
        "postgresql+psycopg://",
        creator=lambda: psycopg.connect(_conninfo()),
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) mode is not supported; run `minipacs migrate`")
run_migrations_online()
