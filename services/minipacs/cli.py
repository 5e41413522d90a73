"""The `minipacs` command: subcommands only, the work lives in the modules."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

import psycopg

from minipacs import logs
from minipacs.aetitle import AETitleError, check_ae_title
from minipacs.config import ConfigError, RemoteAE, Settings

log = logging.getLogger("minipacs")


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"minipacs: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    try:
        return args.func(settings, args)
    except CLIError as exc:
        print(f"minipacs: {exc}", file=sys.stderr)
        return 2
    except psycopg.OperationalError as exc:
        print(f"minipacs: database unavailable: {str(exc).strip()}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minipacs", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    command("migrate", _migrate, "apply the database migrations")
    listener = command("listener", _listener, "run the DICOM listener")
    listener.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    command("sender", _sender, "run the C-MOVE sender worker")
    health = command(
        "healthcheck", _healthcheck, "C-ECHO the local listener (exit 0 if it answers)"
    )
    health.add_argument("--sender", action="store_true", help="check the sender heartbeat instead")
    verify = command(
        "verify", _verify, "compare the index with the volume (exit 1 when inconsistent)"
    )
    verify.add_argument("--repair", action="store_true", help="index files that have no row")
    stats = command("stats", _stats, "print the operation counters")
    stats.add_argument("--json", action="store_true", help="print a JSON object")

    ae = sub.add_parser("ae", help="known remote AEs (C-MOVE destinations)")
    ae_sub = ae.add_subparsers(dest="ae_command", required=True, metavar="ACTION")
    add = ae_sub.add_parser("add", help="add or update a remote AE")
    add.add_argument("name")
    add.add_argument("host")
    add.add_argument("port")
    add.set_defaults(func=_ae_add)
    ae_sub.add_parser("list", help="list remote AEs").set_defaults(func=_ae_list)
    remove = ae_sub.add_parser("remove", help="remove a remote AE")
    remove.add_argument("name")
    remove.set_defaults(func=_ae_remove)

    from minipacs.worklist.commands import add_arguments as worklist_add_arguments

    wl = sub.add_parser("worklist", help="Modality Worklist items (scheduled procedure steps)")
    wl_sub = wl.add_subparsers(dest="worklist_command", required=True, metavar="ACTION")
    wl_add = wl_sub.add_parser("add", help="schedule a procedure step; prints its id")
    worklist_add_arguments(wl_add)
    wl_add.set_defaults(func=_worklist("add"))
    wl_import = wl_sub.add_parser("import", help="add a JSON list of items (all or nothing)")
    wl_import.add_argument("file", metavar="FILE.json")
    wl_import.set_defaults(func=_worklist("import_file"))
    wl_sub.add_parser("list", help="list worklist items").set_defaults(func=_worklist("list_items"))
    wl_remove = wl_sub.add_parser("remove", help="remove a worklist item")
    wl_remove.add_argument("id")
    wl_remove.set_defaults(func=_worklist("remove"))

    mpps = sub.add_parser("mpps", help="Modality Performed Procedure Steps")
    mpps_sub = mpps.add_subparsers(dest="mpps_command", required=True, metavar="ACTION")
    mpps_sub.add_parser("list", help="list MPPS instances and their state").set_defaults(
        func=_mpps_list
    )
    return parser


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from minipacs.migrate import upgrade

    upgrade(settings.database_url)
    return 0


def _listener(settings: Settings, args: argparse.Namespace) -> int:
    from minipacs.listener.app import run

    return run(settings, worker=args.worker)


def _sender(settings: Settings, args: argparse.Namespace) -> int:
    from minipacs.sender.worker import run

    return run(settings)


def _healthcheck(settings: Settings, args: argparse.Namespace) -> int:
    if args.sender:
        import redis

        from minipacs.queue import heartbeat_key

        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
        return 0 if client.exists(heartbeat_key(settings.redis_prefix)) else 1

    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title="HEALTHCHECK")
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
    from minipacs.tls import self_check_context

    context = self_check_context(settings)
    assoc = ae.associate(
        "127.0.0.1",
        settings.port,
        ae_title=settings.ae_title,
        tls_args=(context, "localhost") if context else None,
    )
    if not assoc.is_established:
        return 1
    status = assoc.send_c_echo()
    assoc.release()
    return 0 if status and status.Status == 0 else 1


def _connect(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(settings.database_url, connect_timeout=10, autocommit=True)


def _stats(settings: Settings, args: argparse.Namespace) -> int:
    from minipacs import stats
    from minipacs.db import create_pool

    pool = create_pool(settings.database_url, 1, settings.db_timeout, "minipacs-cli")
    try:
        counts = stats.read_all(pool)
    finally:
        pool.close()
    if args.json:
        print(json.dumps(counts, indent=2))
    else:
        width = max(map(len, counts))
        print(f"{'counter':<{width}}  value")
        for name, value in counts.items():
            print(f"{name:<{width}}  {value}")
    return 0


def _verify(settings: Settings, args: argparse.Namespace) -> int:
    from minipacs import verify
    from minipacs.db import DatabaseUnavailable, create_pool

    pool = create_pool(settings.database_url, 1, settings.db_timeout, "minipacs-verify")
    try:
        report = verify.run(pool, settings.storage_dir, args.repair)
    except DatabaseUnavailable as exc:
        print(f"minipacs: database unavailable: {exc}", file=sys.stderr)
        return 1
    finally:
        pool.close()
    print(verify.render(report))
    return 0 if report.consistent else 1


def _ae_add(settings: Settings, args: argparse.Namespace) -> int:
    from minipacs import remote_aes

    try:
        name = check_ae_title(args.name)
    except AETitleError as exc:
        raise CLIError(str(exc)) from None
    try:
        port = int(args.port)
    except ValueError:
        raise CLIError(f"port {args.port!r} is not a number") from None
    if not 1 <= port <= 65535:
        raise CLIError(f"port {port} is out of range 1-65535")
    if not args.host.strip() or any(c.isspace() for c in args.host):
        raise CLIError(f"host {args.host!r} is not a host name or address")
    with _connect(settings) as conn:
        remote_aes.add(conn, RemoteAE(name, args.host, port))
    print(f"{name} = {args.host}:{port}")
    return 0


def _ae_list(settings: Settings, args: argparse.Namespace) -> int:
    from minipacs import remote_aes

    with _connect(settings) as conn:
        aes = remote_aes.list_all(conn)
    print(f"{'name':<16}  {'host':<30}  port")
    for ae in aes:
        print(f"{ae.name:<16}  {ae.host:<30}  {ae.port}")
    return 0


def _ae_remove(settings: Settings, args: argparse.Namespace) -> int:
    from minipacs import remote_aes

    with _connect(settings) as conn:
        if not remote_aes.remove(conn, args.name):
            raise CLIError(f"no remote AE named {args.name!r}")
    print(f"removed {args.name}")
    return 0


def _worklist(action: str) -> Callable:
    """A `worklist` subcommand from minipacs.worklist.commands; bad input
    becomes a one-line CLIError."""

    def run(settings: Settings, args: argparse.Namespace) -> int:
        from minipacs.worklist import commands
        from minipacs.worklist.items import ItemError

        try:
            return getattr(commands, action)(settings, args)
        except ItemError as exc:
            raise CLIError(str(exc)) from None

    return run


def _mpps_list(settings: Settings, args: argparse.Namespace) -> int:
    from minipacs.mpps.commands import list_steps

    return list_steps(settings, args)


if __name__ == "__main__":
    sys.exit(main())
