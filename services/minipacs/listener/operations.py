"""What every DIMSE handler shares: the shutdown gate, the counter, one log
line on unexpected errors, and building status datasets."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg_pool
from pydicom.dataset import Dataset
from pynetdicom.association import Association
from pynetdicom.events import Event

from minipacs.archive import Archive
from minipacs.config import Settings
from minipacs.db import DatabaseUnavailable
from minipacs.listener.gate import OperationGate
from minipacs.stats import Statistics
from minipacs.status import Status

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListenerContext:
    """What the handlers need, built once at start and shared by all threads."""

    settings: Settings
    pool: psycopg_pool.ConnectionPool
    archive: Archive
    gate: OperationGate
    stats: Statistics


def status_dataset(status: Status, comment: str | None = None) -> Dataset:
    """A response status with an optional ErrorComment (LO: 64 characters)."""
    ds = Dataset()
    ds.Status = int(status)
    if comment:
        ds.ErrorComment = comment[:64]
    return ds


def peer(event: Event) -> str:
    """`AE@host:port` of the requestor, for log lines."""
    return peer_of(event.assoc)


def peer_of(assoc: Association) -> str:
    requestor = assoc.requestor
    return f"{requestor.ae_title}@{requestor.address}:{requestor.port}"


def guarded(
    ctx: ListenerContext,
    counter: str,
    name: str,
    who: str,
    call: Callable[[], Any],
    failure: Callable[[Status, str], Any] = status_dataset,
) -> Any:
    """Run one operation: refused once shutdown began, counted, database
    trouble and any unexpected exception logged with context and answered
    with a failure status rather than dropped."""
    if not ctx.gate.enter():
        return failure(Status.OUT_OF_RESOURCES, "archive is shutting down")
    try:
        ctx.stats.increment(counter)
        return call()
    except DatabaseUnavailable as exc:
        log.error("%s from %s: database unavailable: %s", name, who, exc)
        return failure(Status.OUT_OF_RESOURCES, "database unavailable")
    except Exception:
        log.exception("%s from %s failed unexpectedly", name, who)
        return failure(Status.UNABLE_TO_PROCESS, "internal error, see PACS log")
    finally:
        ctx.gate.leave()


def operation(
    ctx: ListenerContext,
    counter: str,
    failure: Callable[[Status, str], Any] = status_dataset,
) -> Callable:
    """Decorate a plain (non-generator) handler: refused once shutdown began,
    counted, database trouble and any unexpected exception logged with context
    and answered with a failure status rather than dropped. `failure(status,
    comment)` shapes that answer (N-services answer a (status, dataset) pair)."""

    def decorate(handler: Callable[[Event], Any]) -> Callable[[Event], Any]:
        @functools.wraps(handler)
        def run(event: Event) -> Any:
            return guarded(
                ctx, counter, handler.__name__, peer(event), lambda: handler(event), failure
            )

        return run

    return decorate


def streaming_operation(ctx: ListenerContext, counter: str) -> Callable:
    """Decorate a generator handler (C-FIND, C-GET, C-MOVE) the same way:
    refused once shutdown began, counted; pynetdicom turns an exception raised
    from the generator into the service's failure status."""

    def decorate(handler: Callable[[Event], Iterator]) -> Callable[[Event], Iterator]:
        @functools.wraps(handler)
        def run(event: Event) -> Iterator:
            if not ctx.gate.enter():
                yield status_dataset(Status.OUT_OF_RESOURCES, "archive is shutting down"), None
                return
            try:
                ctx.stats.increment(counter)
                yield from handler(event)
            finally:
                ctx.gate.leave()

        return run

    return decorate
