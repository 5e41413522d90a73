"""Logging set-up shared by every `minipacs` command."""

from __future__ import annotations

import logging
import sys


def configure(level: str) -> None:
    """One line per record on stderr. pynetdicom's own chatter is kept to
    warnings unless we run at DEBUG."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for name in ("pynetdicom", "alembic.runtime.plugins"):
        logging.getLogger(name).setLevel(quiet)
