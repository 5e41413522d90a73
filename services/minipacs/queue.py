"""Redis key names, all in one place (readable with `redis-cli`)."""

from __future__ import annotations

import socket

HEARTBEAT_TTL_SECONDS = 30


def heartbeat_key(prefix: str, host: str | None = None) -> str:
    """Set by a running sender with a TTL; its health check reads it."""
    return f"{prefix}:sender:{host or socket.gethostname()}:heartbeat"
