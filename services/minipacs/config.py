"""Settings read once from the environment (documented in `.env.example`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minipacs.aetitle import AETitleError, check_ae_title

DUPLICATE_POLICIES = ("keep", "overwrite", "reject")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(Exception):
    """One or more environment variables are missing or malformed."""


@dataclass(frozen=True)
class RemoteAE:
    name: str
    host: str
    port: int


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    ae_title: str
    port: int
    bind_address: str
    storage_dir: Path
    enable_worklist: bool
    enable_mpps: bool
    log_level: str
    remote_aes: tuple[RemoteAE, ...]
    duplicate_policy: str
    max_associations: int
    listener_processes: int
    max_pdu_size: int
    network_timeout: float
    db_pool_size: int
    db_timeout: float
    shutdown_grace_seconds: float
    redis_prefix: str
    pn_case_sensitive: bool
    find_max_results: int
    temp_sweep_age_seconds: float
    allowed_aes: tuple[str, ...]
    tls_cert: Path | None
    tls_key: Path | None
    tls_ca: Path | None
    job_reclaim_seconds: float
    job_max_attempts: int
    move_connect_retries: int
    move_retry_delay: float
    move_connect_timeout: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `env` (default: os.environ); every bad variable is
        reported at once in the ConfigError message."""
        reader = _Reader(os.environ if env is None else env)
        settings = cls(
            database_url=reader.get(
                "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/minipacs", str
            ),
            redis_url=reader.get("REDIS_URL", "redis://127.0.0.1:6379/0", str),
            ae_title=reader.get("PACS_AE_TITLE", "MINI_PACS", _ae_title),
            port=reader.get("PACS_PORT", "11112", _port),
            bind_address=reader.get("PACS_BIND_ADDRESS", "0.0.0.0", str),
            storage_dir=reader.get("PACS_STORAGE_DIR", "./pacs_data", Path),
            enable_worklist=reader.get("PACS_ENABLE_WORKLIST", "true", _bool),
            enable_mpps=reader.get("PACS_ENABLE_MPPS", "true", _bool),
            log_level=reader.get("PACS_LOG_LEVEL", "INFO", _choice(LOG_LEVELS, upper=True)),
            remote_aes=reader.get("PACS_REMOTE_AES", "", parse_remote_aes),
            duplicate_policy=reader.get(
                "PACS_DUPLICATE_POLICY", "keep", _choice(DUPLICATE_POLICIES)
            ),
            max_associations=reader.get("PACS_MAX_ASSOCIATIONS", "50", _positive_int),
            listener_processes=reader.get("PACS_LISTENER_PROCESSES", "1", _positive_int),
            max_pdu_size=reader.get("PACS_MAX_PDU_SIZE", "1048576", _non_negative_int),
            network_timeout=reader.get("PACS_NETWORK_TIMEOUT", "60", _positive_float),
            db_pool_size=reader.get("PACS_DB_POOL_SIZE", "10", _positive_int),
            db_timeout=reader.get("PACS_DB_TIMEOUT", "5", _positive_float),
            shutdown_grace_seconds=reader.get(
                "PACS_SHUTDOWN_GRACE_SECONDS", "30", _non_negative_float
            ),
            redis_prefix=reader.get("PACS_REDIS_PREFIX", "minipacs", _redis_prefix),
            pn_case_sensitive=reader.get("PACS_PN_CASE_SENSITIVE", "false", _bool),
            find_max_results=reader.get("PACS_FIND_MAX_RESULTS", "10000", _positive_int),
            temp_sweep_age_seconds=reader.get(
                "PACS_TEMP_SWEEP_AGE_SECONDS", "600", _non_negative_float
            ),
            allowed_aes=reader.get("PACS_ALLOWED_AES", "", parse_ae_list),
            tls_cert=reader.get("PACS_TLS_CERT", "", _optional_file),
            tls_key=reader.get("PACS_TLS_KEY", "", _optional_file),
            tls_ca=reader.get("PACS_TLS_CA", "", _optional_file),
            job_reclaim_seconds=reader.get("PACS_JOB_RECLAIM_SECONDS", "60", _positive_float),
            job_max_attempts=reader.get("PACS_JOB_MAX_ATTEMPTS", "5", _positive_int),
            move_connect_retries=reader.get("PACS_MOVE_CONNECT_RETRIES", "3", _non_negative_int),
            move_retry_delay=reader.get("PACS_MOVE_RETRY_DELAY", "1", _non_negative_float),
            move_connect_timeout=reader.get("PACS_MOVE_CONNECT_TIMEOUT", "5", _positive_float),
        )
        if (settings.tls_cert is None) != (settings.tls_key is None):
            reader.errors.append("PACS_TLS_CERT and PACS_TLS_KEY: set both or neither")
        if settings.tls_ca is not None and settings.tls_cert is None:
            reader.errors.append("PACS_TLS_CA: client certificates need PACS_TLS_CERT/KEY too")
        reader.raise_errors()
        return settings


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.errors: list[str] = []

    def get(self, name: str, default: str, parse: Callable[[str], Any]) -> Any:
        raw = self.env.get(name, default)
        try:
            return parse(raw)
        except ValueError as exc:
            self.errors.append(f"{name}={raw!r}: {exc}")
            return None

    def raise_errors(self) -> None:
        if self.errors:
            raise ConfigError("; ".join(self.errors))


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _number(kind: type, minimum: float, above: bool = False) -> Callable[[str], Any]:
    """A parser for an int or float of at least (or, `above`, more than) `minimum`."""
    noun = "an integer" if kind is int else "a number"
    bound = f"above {minimum}" if above else f"of {minimum} or more"

    def parse(raw: str) -> Any:
        try:
            value = kind(raw.strip())
        except ValueError:
            raise ValueError(f"expected {noun}") from None
        if value < minimum or (above and value == minimum):
            raise ValueError(f"expected {noun} {bound}")
        return value

    return parse


_positive_int = _number(int, 1)
_non_negative_int = _number(int, 0)
_positive_float = _number(float, 0, above=True)
_non_negative_float = _number(float, 0)


def _port(raw: str) -> int:
    value = _positive_int(raw)
    if value > 65535:
        raise ValueError("expected a TCP port from 1 to 65535")
    return value


def _ae_title(raw: str) -> str:
    try:
        return check_ae_title(raw)
    except AETitleError as exc:
        raise ValueError(str(exc)) from None


def _redis_prefix(raw: str) -> str:
    if not raw or any(c.isspace() for c in raw):
        raise ValueError("expected a non-empty key prefix without spaces")
    return raw


def _choice(options: tuple[str, ...], upper: bool = False) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().upper() if upper else raw.strip().lower()
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return value

    return parse


def parse_remote_aes(raw: str) -> tuple[RemoteAE, ...]:
    """Parse `NAME=host:port,NAME2=host2:port2` (empty means none)."""
    aes = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, address = item.partition("=")
        host, colon, port = address.rpartition(":")
        if not sep or not colon or not host:
            raise ValueError(f"{item!r} is not NAME=host:port")
        try:
            aes.append(RemoteAE(check_ae_title(name), host, _port(port)))
        except AETitleError as exc:
            raise ValueError(str(exc)) from None
    return tuple(aes)


def parse_ae_list(raw: str) -> tuple[str, ...]:
    """Parse `AE1,AE2` (empty means none) into checked AE titles."""
    try:
        return tuple(check_ae_title(part) for part in raw.split(",") if part.strip(" "))
    except AETitleError as exc:
        raise ValueError(str(exc)) from None


def _optional_file(raw: str) -> Path | None:
    """An existing file, or None when the variable is empty."""
    if not raw.strip():
        return None
    path = Path(raw.strip())
    if not path.is_file():
        raise ValueError("no such file")
    return path
