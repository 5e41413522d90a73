"""`minipacs sender`: the worker loop (jobs arrive with the C-MOVE issue)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time

import redis

from minipacs import queue
from minipacs.config import Settings
from minipacs.db import create_pool

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_SECONDS = 5.0


def run(settings: Settings) -> int:
    """Connect, then beat until SIGTERM/SIGINT; return the exit code."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
    )
    pool = create_pool(settings.database_url, 2, settings.db_timeout, "sender")
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    log.info("sender %s started (redis %s)", consumer, settings.redis_url)
    next_beat = 0.0
    while not stop.is_set():
        if time.monotonic() >= next_beat:
            _beat(client, settings.redis_prefix, consumer)
            next_beat = time.monotonic() + HEARTBEAT_INTERVAL_SECONDS
        stop.wait(1.0)
    pool.close()
    client.close()
    log.info("sender %s stopped", consumer)
    return 0


def _beat(client: redis.Redis, prefix: str, consumer: str) -> None:
    try:
        client.set(queue.heartbeat_key(prefix), consumer, ex=queue.HEARTBEAT_TTL_SECONDS)
    except redis.RedisError as exc:
        log.warning("redis unavailable: %s", exc)
