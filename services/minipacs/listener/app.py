"""`minipacs listener`: assemble the AE, serve, shut down gracefully on SIGTERM."""

from __future__ import annotations

import logging
import signal
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis
from psycopg_pool import ConnectionPool
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import (
    ModalityPerformedProcedureStep,
    ModalityWorklistInformationFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from minipacs import remote_aes, storage, tls
from minipacs.archive import Archive
from minipacs.config import Settings
from minipacs.db import DatabaseUnavailable, connection, create_pool, transaction
from minipacs.index import instances
from minipacs.listener import fastpath, handlers, query, retrieve, sockets
from minipacs.listener.gate import OperationGate
from minipacs.listener.mpps import mpps_handlers
from minipacs.listener.operations import ListenerContext, status_dataset
from minipacs.listener.server import start as start_server
from minipacs.listener.supervisor import supervise
from minipacs.listener.worklist import worklist_find
from minipacs.queue import JobQueue
from minipacs.stats import Statistics
from minipacs.status import Status

log = logging.getLogger(__name__)

DRAIN_SECONDS = 2.0  # after the last operation, for associations to end by themselves

RETRIEVE_MODELS = (
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelMove,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelGet,
)


def build_ae(settings: Settings) -> AE:
    """The AE with every presentation context the archive serves."""
    ae = AE(ae_title=settings.ae_title)
    ae.require_called_aet = True
    # PACS_ALLOWED_AES: anyone else is rejected (permanent, calling AE not recognised).
    ae.require_calling_aet = list(settings.allowed_aes)
    # Shared out when several processes serve the port.
    ae.maximum_associations = -(-settings.max_associations // settings.listener_processes)
    ae.maximum_pdu_size = settings.max_pdu_size
    ae.network_timeout = settings.network_timeout
    ae.acse_timeout = settings.network_timeout
    ae.dimse_timeout = settings.network_timeout
    ae.add_supported_context(Verification, ALL_TRANSFER_SYNTAXES)
    # Real modalities send compressed data: accept every transfer syntax and
    # store the bytes as received.
    # scu_role/scp_role: accept the SCP/SCU role selection a C-GET requestor
    # proposes, so its storage contexts carry our C-STORE sub-operations.
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(
            context.abstract_syntax, ALL_TRANSFER_SYNTAXES, scu_role=True, scp_role=True
        )
    for model in RETRIEVE_MODELS:
        ae.add_supported_context(model, ALL_TRANSFER_SYNTAXES)
    for sop_class in query.SOP_CLASSES:
        ae.add_supported_context(sop_class, ALL_TRANSFER_SYNTAXES)
    if settings.enable_worklist:
        ae.add_supported_context(ModalityWorklistInformationFind, ALL_TRANSFER_SYNTAXES)
    if settings.enable_mpps:
        ae.add_supported_context(ModalityPerformedProcedureStep, ALL_TRANSFER_SYNTAXES)
    return ae


def c_find_dispatcher(ctx: ListenerContext) -> Callable[[Event], Iterator]:
    """pynetdicom has one EVT_C_FIND handler per AE: route each request to
    the handler of its information model (SOP class)."""
    find_handlers: dict[str, Callable[[Event], Iterator]] = dict.fromkeys(
        query.SOP_CLASSES, query.find_handler(ctx)
    )
    if ctx.settings.enable_worklist:
        find_handlers[ModalityWorklistInformationFind] = worklist_find(ctx)

    def on_c_find(event: Event) -> Iterator:
        handler = find_handlers.get(str(event.request.AffectedSOPClassUID))
        if handler is None:
            yield status_dataset(Status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS), None
            return
        yield from handler(event)

    return on_c_find


def dimse_handlers(ctx: ListenerContext) -> list[tuple]:
    """C-FIND (by SOP class) and, when enabled, MPPS N-CREATE/N-SET."""
    bound: list[tuple] = [(evt.EVT_C_FIND, c_find_dispatcher(ctx))]
    if ctx.settings.enable_mpps:
        bound += mpps_handlers(ctx)
    return bound


def seed_remote_aes(pool: ConnectionPool, settings: Settings) -> None:
    """Register the PACS_REMOTE_AES destinations; a database that is not up
    yet is logged, not fatal (`minipacs ae add` remains)."""
    try:
        with transaction(pool) as conn:
            remote_aes.add_all(conn, settings.remote_aes)
        log.info(
            "remote AEs from PACS_REMOTE_AES: %s",
            ", ".join(f"{ae.name}={ae.host}:{ae.port}" for ae in settings.remote_aes),
        )
    except DatabaseUnavailable as exc:
        log.warning("could not register PACS_REMOTE_AES: %s", exc)


def run(settings: Settings, worker: bool = False) -> int:
    """Serve until SIGTERM/SIGINT; return the process exit code. With
    PACS_LISTENER_PROCESSES > 1 this process supervises that many workers."""
    try:
        ssl_context = tls.server_context(settings)
    except tls.TLSConfigError as exc:
        log.error("%s", exc)
        return 2
    if not worker:
        prepare(settings)
        if settings.listener_processes > 1:
            return supervise(settings)
    return serve(settings, ssl_context)


def prepare(settings: Settings) -> None:
    """Once per start, before serving: clean up after a store interrupted by
    a crash, register PACS_REMOTE_AES."""
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    pool = create_pool(settings.database_url, 1, settings.db_timeout, "listener-start")
    try:
        sweep_interrupted_stores(pool, settings)
        if settings.remote_aes:
            seed_remote_aes(pool, settings)
    finally:
        pool.close()


def sweep_interrupted_stores(pool: ConnectionPool, settings: Settings) -> None:
    """Only temp files older than PACS_TEMP_SWEEP_AGE_SECONDS are looked at:
    several listener processes may share the volume and be storing now."""
    root = settings.storage_dir

    def committed(paths: list[Path]) -> set[Path]:
        relative = {storage.relative_path(root, path): path for path in paths}
        with connection(pool) as conn:
            return {relative[path] for path in instances.committed_files(conn, list(relative))}

    sweep = storage.sweep_temp_files(root, settings.temp_sweep_age_seconds, committed)
    if sweep.removed:
        log.warning("removed %d temp files left by an interrupted store", sweep.removed)
    if sweep.rolled_back:
        log.warning(
            "removed %d files published by an interrupted store before their index "
            "rows were committed (never answered Success)",
            sweep.rolled_back,
        )


def serve(settings: Settings, ssl_context: ssl.SSLContext | None) -> int:
    """One listener process: serve until SIGTERM/SIGINT."""
    pool = create_pool(
        settings.database_url, settings.db_pool_size, settings.db_timeout, "listener"
    )
    ctx = ListenerContext(
        settings=settings,
        pool=pool,
        archive=Archive(pool, settings.storage_dir, settings.duplicate_policy),
        gate=OperationGate(),
        stats=Statistics(pool).start(),
    )

    # Connects lazily: the listener serves everything but C-MOVE without Redis.
    redis_client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=5, socket_connect_timeout=2
    )
    retrieve.install(pool)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    ae = build_ae(settings)
    sockets.install(settings.max_pdu_size)
    fastpath.install(settings.log_level)  # fast C-FIND responses, see its docstring
    try:
        server = start_server(
            ae,
            (settings.bind_address, settings.port),
            handlers.association_handlers()
            + handlers.service_handlers(ctx)
            + dimse_handlers(ctx)
            + retrieve.handlers(ctx, JobQueue(redis_client, settings.redis_prefix)),
            ssl_context,
        )
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.bind_address, settings.port, exc)
        ctx.stats.close()
        pool.close()
        redis_client.close()
        return 1
    log.info(
        "listening as %s on %s:%d%s, storage %s",
        settings.ae_title,
        settings.bind_address,
        settings.port,
        " (TLS)" if ssl_context else "",
        settings.storage_dir,
    )
    while not stop.wait(1.0):
        pass

    log.info("shutting down: refusing new operations, waiting for those in flight")
    ctx.gate.close()
    server.shutdown()  # stop accepting connections at once
    if not ctx.gate.wait_idle(settings.shutdown_grace_seconds):
        log.warning(
            "operations still running after %.0fs; aborting them", settings.shutdown_grace_seconds
        )
    # Responses of the last operations are still on their way out, and peers
    # whose next request is now refused may release by themselves: give them
    # a moment before aborting whoever is left.
    deadline = time.monotonic() + DRAIN_SECONDS
    while server.active_associations and time.monotonic() < deadline:
        time.sleep(0.05)
    for assoc in server.active_associations:
        assoc.abort()
    ctx.stats.close()
    pool.close()
    redis_client.close()
    log.info("listener stopped")
    return 0
