"""Fixtures: a fresh database per session, the real `minipacs` processes.

PostgreSQL and Redis must be running (TEST_PG_ADMIN_URL, TEST_REDIS_URL
override where). Every session creates its own database and Redis key prefix
and drops them at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.helpers import (
    Pacs,
    Process,
    c_echo,
    create_database,
    drop_database,
    free_port,
    start_process,
    wait_until,
)

ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AE_TITLE = "MINI_PACS"


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def database_url(run_id: str) -> Iterator[str]:
    """A fresh, migrated database, dropped after the session."""
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/minipacs_test_{run_id}"
    create_database(url)
    yield url
    drop_database(ADMIN_URL, url)


@pytest.fixture(scope="session")
def base_env(database_url: str, run_id: str) -> Iterator[dict[str, str]]:
    """Environment every `minipacs` process of the session starts from; the
    session's Redis keys are deleted at the end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACS_")}
    yield env | {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "PACS_REDIS_PREFIX": f"minipacs-test-{run_id}",
        "PACS_AE_TITLE": AE_TITLE,
        "PACS_LOG_LEVEL": "INFO",
        "PACS_SHUTDOWN_GRACE_SECONDS": "10",
    }
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    for key in client.scan_iter(f"minipacs-test-{run_id}:*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture(scope="session")
def start_listener(
    base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Pacs]]:
    """Start a `minipacs listener` on a free port with extra PACS_* settings;
    every listener started is stopped at the end of the session."""
    started: list[Pacs] = []

    def start(storage_dir: Path | None = None, **settings: str) -> Pacs:
        port = free_port()
        workdir = tmp_path_factory.mktemp("listener")
        storage = storage_dir or workdir / "storage"
        env = base_env | {"PACS_PORT": str(port), "PACS_STORAGE_DIR": str(storage)} | settings
        process = start_process(["listener"], env, workdir / "listener.log")
        pacs = Pacs(
            "127.0.0.1", port, env["PACS_AE_TITLE"], storage, base_env["DATABASE_URL"], env, process
        )
        started.append(pacs)

        def ready() -> bool:
            if process.popen.poll() is not None:
                raise AssertionError(
                    f"listener exited {process.popen.returncode}:\n{process.log()}"
                )
            return c_echo(pacs.host, port, pacs.ae_title, timeout=2)

        wait_until(ready, 30, "the listener to answer C-ECHO", interval=0.2)
        return pacs

    yield start
    for pacs in started:
        pacs.process.stop()


@pytest.fixture(scope="session")
def pacs(start_listener: Callable[..., Pacs]) -> Pacs:
    """The session's listener with default settings."""
    return start_listener()


@pytest.fixture(scope="session")
def start_sender(
    base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Process]]:
    """Start a `minipacs sender` for a listener's archive (same storage, same
    Redis prefix) with extra PACS_* settings; stopped at the end of the session."""
    started: list[Process] = []

    def start(pacs: Pacs, **settings: str) -> Process:
        workdir = tmp_path_factory.mktemp("sender")
        shared = {k: pacs.env[k] for k in ("PACS_STORAGE_DIR", "PACS_REDIS_PREFIX", "REDIS_URL")}
        env = base_env | shared | settings
        process = start_process(["sender"], env, workdir / "sender.log")
        started.append(process)
        return process

    yield start
    for process in started:
        if process.popen.poll() is None:
            process.stop()
