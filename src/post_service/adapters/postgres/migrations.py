"""Runs the Alembic migrations under a PostgreSQL advisory lock.

Two pods migrating at once is normal during a rollout: the lock makes the second
wait, then find the schema already at head and do nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from post_service.adapters.postgres.errors import is_unreachable
from post_service.config import DatabaseSettings

log = logging.getLogger(__name__)

# Any fixed 64-bit number, the same in every replica: "the post-service schema".
MIGRATION_LOCK_KEY = 0x5057_5354_4D49_4752
_SOURCE_CHECKOUT_INI = Path(__file__).resolve().parents[4] / "alembic.ini"


class DatabaseNeverCame(RuntimeError):
    pass


class MigrationsNotFound(RuntimeError):
    pass


def find_alembic_config() -> Config:
    """ALEMBIC_CONFIG, else ./alembic.ini (the image's WORKDIR), else the source checkout's."""
    candidates = [Path(os.environ["ALEMBIC_CONFIG"])] if os.environ.get("ALEMBIC_CONFIG") else []
    candidates += [Path.cwd() / "alembic.ini", _SOURCE_CHECKOUT_INI]
    for path in candidates:
        if path.is_file():
            return Config(str(path))
    raise MigrationsNotFound(f"alembic.ini not found (looked at {', '.join(map(str, candidates))})")


async def upgrade_to_head(settings: DatabaseSettings, wait_seconds: float) -> str:
    """Migrate to the newest revision; returns it. Waits for a database that is starting."""
    config = find_alembic_config()
    engine = _engine(settings)
    try:
        conn = await _connect_when_ready(engine, wait_seconds)
        try:
            # Session-level lock: held across Alembic's own transactions, released by close.
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            await conn.commit()
            await conn.run_sync(_upgrade, config)
            await conn.commit()
            return await conn.run_sync(_current_revision) or "base"
        finally:
            await conn.close()
    finally:
        await engine.dispose()


async def wait_for_head(settings: DatabaseSettings, wait_seconds: float) -> str:
    """Wait until another process has migrated the schema to head (for init containers)."""
    head = ScriptDirectory.from_config(find_alembic_config()).get_current_head() or "base"
    engine = _engine(settings)
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            conn = await _connect_when_ready(engine, deadline - time.monotonic())
            try:
                current = await conn.run_sync(_current_revision)
            finally:
                await conn.close()
            if current == head:
                return head
            if time.monotonic() >= deadline:
                raise DatabaseNeverCame(f"schema is at {current or 'base'}, expected {head}")
            await asyncio.sleep(1.0)
    finally:
        await engine.dispose()


def _engine(settings: DatabaseSettings) -> AsyncEngine:
    return create_async_engine(
        settings.url.get_secret_value(),
        hide_parameters=True,
        connect_args={"timeout": settings.connect_timeout_seconds},
    )


async def _connect_when_ready(engine: AsyncEngine, wait_seconds: float) -> AsyncConnection:
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    while True:
        try:
            return await engine.connect()
        except Exception as error:
            if not is_unreachable(error) and "starting up" not in str(error):
                raise
            if time.monotonic() >= deadline:
                raise DatabaseNeverCame(
                    f"database not reachable within {wait_seconds:.0f} s ({type(error).__name__})"
                ) from None
            log.info("database not ready yet, retrying")
            await asyncio.sleep(1.0)


def _upgrade(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
