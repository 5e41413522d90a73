"""`minipacs listener`: assemble the AE, serve, shut down gracefully on SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading

import redis
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from minipacs import remote_aes, storage
from minipacs.archive import Archive
from minipacs.config import Settings
from minipacs.db import DatabaseUnavailable, create_pool, transaction
from minipacs.listener import handlers, retrieve
from minipacs.listener.gate import OperationGate
from minipacs.listener.operations import ListenerContext
from minipacs.queue import JobQueue

log = logging.getLogger(__name__)

# A temp file this old cannot belong to a store still in progress.
TEMP_SWEEP_AGE_SECONDS = 600.0

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
    ae.maximum_associations = settings.max_associations
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
    return ae


def seed_remote_aes(ctx: ListenerContext) -> None:
    """Register the PACS_REMOTE_AES destinations; a database that is not up
    yet is logged, not fatal (`minipacs ae add` remains)."""
    if not ctx.settings.remote_aes:
        return
    try:
        with transaction(ctx.pool) as conn:
            remote_aes.add_all(conn, ctx.settings.remote_aes)
        log.info(
            "remote AEs from PACS_REMOTE_AES: %s",
            ", ".join(f"{ae.name}={ae.host}:{ae.port}" for ae in ctx.settings.remote_aes),
        )
    except DatabaseUnavailable as exc:
        log.warning("could not register PACS_REMOTE_AES: %s", exc)


def run(settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT; return the process exit code."""
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    swept = storage.sweep_temp_files(settings.storage_dir, TEMP_SWEEP_AGE_SECONDS)
    if swept:
        log.warning("removed %d temp files left by an interrupted store", swept)

    pool = create_pool(
        settings.database_url, settings.db_pool_size, settings.db_timeout, "listener"
    )
    ctx = ListenerContext(
        settings=settings,
        pool=pool,
        archive=Archive(pool, settings.storage_dir, settings.duplicate_policy),
        gate=OperationGate(),
    )
    seed_remote_aes(ctx)
    # Connects lazily: the listener serves everything but C-MOVE without Redis.
    redis_client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=5, socket_connect_timeout=2
    )
    retrieve.install(pool)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    ae = build_ae(settings)
    server = ae.start_server(
        (settings.bind_address, settings.port),
        block=False,
        evt_handlers=handlers.association_handlers()
        + handlers.service_handlers(ctx)
        + retrieve.handlers(ctx, JobQueue(redis_client, settings.redis_prefix)),
    )
    log.info(
        "listening as %s on %s:%d, storage %s",
        settings.ae_title,
        settings.bind_address,
        settings.port,
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
    for assoc in server.active_associations:
        assoc.abort()
    pool.close()
    redis_client.close()
    log.info("listener stopped")
    return 0
