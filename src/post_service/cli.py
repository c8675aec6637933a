"""The `post-service` command: serve, migrate, healthcheck."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from post_service.config import InvalidSettings, Settings, load_settings

log = logging.getLogger("post_service")

EXIT_START_FAILED = 1
EXIT_CONFIG_ERROR = 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "healthcheck":
        from post_service.entrypoints.healthcheck import check_health

        return check_health(args.addr, args.service, args.timeout)
    try:
        settings = load_settings()
    except InvalidSettings as error:
        details = "".join(f"\n  {problem}" for problem in error.problems)
        print(f"post-service: invalid configuration{details}", file=sys.stderr)
        return EXIT_CONFIG_ERROR

    from post_service.logs import configure_logging

    configure_logging(settings.runtime.log_level)
    if args.command == "migrate":
        return _migrate(settings, args.timeout, args.wait_only)
    if settings.runtime.event_loop == "uvloop":
        import uvloop

        return uvloop.run(_serve(settings))
    return asyncio.run(_serve(settings))


def _migrate(settings: Settings, timeout: float, wait_only: bool) -> int:
    from post_service.adapters.postgres.migrations import (
        MigrationFailed,
        upgrade_to_head,
        wait_for_head,
    )

    action = wait_for_head if wait_only else upgrade_to_head
    try:
        revision = asyncio.run(action(settings.db, timeout))
    except MigrationFailed as error:
        log.error("migration failed: %s", error)
        return 1
    log.info("schema at revision %s", revision)
    return 0


async def _serve(settings: Settings) -> int:
    from post_service.bootstrap import build_app

    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_requested.set)
    app = build_app(settings)
    try:
        await app.start()
    except Exception:
        # A port already taken, say: release what did start (ports, pool, channel).
        log.exception("post-service could not start")
        await app.stop()
        return EXIT_START_FAILED
    try:
        await stop_requested.wait()
    finally:
        await app.stop()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="post-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve gRPC (never migrates)")
    migrate = commands.add_parser("migrate", help="upgrade the database schema to head")
    migrate.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the database (60)"
    )
    migrate.add_argument(
        "--wait-only",
        action="store_true",
        help="do not migrate; wait until another process has migrated to head",
    )
    health = commands.add_parser("healthcheck", help="exit 0 when the server reports SERVING")
    health.add_argument(
        "--addr", default=f"127.0.0.1:{os.environ.get('GRPC_PORT', '50054')}", help="host:port"
    )
    health.add_argument("--service", default="", help='health service name ("" = overall)')
    health.add_argument("--timeout", type=float, default=3.0, help="seconds (3)")
    return parser
