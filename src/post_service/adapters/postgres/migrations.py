"""Runs the Alembic migrations under a PostgreSQL advisory lock.

The revisions ship inside the package (``schema_migrations/``), so the installed
``post-service migrate`` works from any directory; the repository's ``alembic.ini``
points at the same place for developers' ``alembic`` commands.

Two pods migrating at once is normal during a rollout: the lock makes the second
wait, then find the schema already at head and do nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from post_service.adapters.postgres.errors import DatabaseTarget, explain_connect_failure
from post_service.config import DatabaseSettings

log = logging.getLogger(__name__)

# Any fixed 64-bit number, the same in every replica: "the post-service schema".
MIGRATION_LOCK_KEY = 0x5057_5354_4D49_4752
SCRIPT_LOCATION = "post_service.adapters.postgres:schema_migrations"


class MigrationFailed(RuntimeError):
    """An expected failure, said in one line: the CLI prints it without a traceback."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or "base"


async def upgrade_to_head(settings: DatabaseSettings, wait_seconds: float) -> str:
    """Migrate to the newest revision; returns it. Waits for a database that is starting."""
    engine = _engine(settings)
    try:
        conn = await _connect_when_ready(engine, settings, wait_seconds)
        try:
            # Session-level lock: held across Alembic's own transactions, released by close.
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            await conn.commit()
            await conn.run_sync(_upgrade, alembic_config())
            await conn.commit()
            return await conn.run_sync(_current_revision) or "base"
        finally:
            await conn.close()
    finally:
        await engine.dispose()


async def wait_for_head(settings: DatabaseSettings, wait_seconds: float) -> str:
    """Wait until another process has migrated the schema to head (for init containers)."""
    head = head_revision()
    engine = _engine(settings)
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            conn = await _connect_when_ready(engine, settings, deadline - time.monotonic())
            try:
                current = await conn.run_sync(_current_revision)
            finally:
                await conn.close()
            if current == head:
                return head
            if time.monotonic() >= deadline:
                raise MigrationFailed(f"schema is at {current or 'base'}, expected {head}")
            await asyncio.sleep(1.0)
    finally:
        await engine.dispose()


def _engine(settings: DatabaseSettings) -> AsyncEngine:
    return create_async_engine(
        settings.url.get_secret_value(),
        hide_parameters=True,
        connect_args={"timeout": settings.connect_timeout_seconds},
    )


async def _connect_when_ready(
    engine: AsyncEngine, settings: DatabaseSettings, wait_seconds: float
) -> AsyncConnection:
    """Retries what time can fix (down, starting, refusing); fails at once on the rest."""
    target = DatabaseTarget.from_url(settings.url.get_secret_value())
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    last_reason = ""
    while True:
        try:
            return await engine.connect()
        except Exception as error:
            failure = explain_connect_failure(error, target, settings.connect_timeout_seconds)
            if failure is None:
                raise
            if not failure.retryable:
                raise MigrationFailed(failure.reason) from None
            if time.monotonic() >= deadline:
                raise MigrationFailed(
                    f"database not ready within {wait_seconds:.0f} s: {failure.reason}"
                ) from None
            if failure.reason != last_reason:
                log.info("database not ready yet, retrying: %s", failure.reason)
                last_reason = failure.reason
            await asyncio.sleep(1.0)


def _upgrade(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
