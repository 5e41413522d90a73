"""`minipacs migrate`: create the database if needed, apply alembic migrations."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

log = logging.getLogger(__name__)


def alembic_ini() -> Path:
    """alembic.ini at the repository root (PACS_ALEMBIC_INI overrides)."""
    override = os.environ.get("PACS_ALEMBIC_INI")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "alembic.ini"


def ensure_database(url: str) -> None:
    """Create the database named in `url` when it does not exist yet."""
    params = conninfo_to_dict(url)
    name = params.get("dbname")
    if not name:
        return
    admin = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            log.info("created database %s", name)


def upgrade(url: str) -> None:
    """Apply every migration up to head; running it again changes nothing."""
    ensure_database(url)
    config = Config(str(alembic_ini()))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")
