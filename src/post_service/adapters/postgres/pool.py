"""The asyncpg connection pools: one for the primary, and one for a read replica if configured.

The request path talks to asyncpg directly: profiling showed SQLAlchemy's statement
compilation and row processing at a third of the service's CPU (docs/benchmarks.md).
SQLAlchemy still describes the schema and runs the Alembic migrations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import unquote

import asyncpg
from pydantic import SecretStr

from post_service.adapters.postgres.errors import (
    DatabaseTarget,
    is_schema_behind,
    is_unreachable,
)
from post_service.config import DatabaseSettings
from post_service.domain.errors import DependencyUnavailable

# A connection unused for this long is closed, so a burst leaves no lasting load on
# PostgreSQL (max_connections is shared by every replica).
IDLE_CONNECTION_LIFETIME_SECONDS = 300.0


class Database:
    """The pool, and the one way the adapters borrow a connection from it."""

    def __init__(
        self, pool: asyncpg.Pool, acquire_timeout_seconds: float, target: DatabaseTarget
    ) -> None:
        self.pool = pool
        self.target = target
        self.acquire_timeout = acquire_timeout_seconds

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; "database down" errors leave as ``DependencyUnavailable``."""
        try:
            async with self.pool.acquire(timeout=self.acquire_timeout) as conn:
                yield conn
        except Exception as error:
            if is_unreachable(error):
                raise DependencyUnavailable("database") from error
            if is_schema_behind(error):
                # Never migrated, or a rollout runs this build before its migration: readiness
                # is NOT_SERVING already (PostgresReadiness), so callers retry on another pod.
                raise DependencyUnavailable("database schema") from error
            raise


def create_database(settings: DatabaseSettings, url: SecretStr | None = None) -> Database:
    """The primary's (DB_URL), or with ``url`` another server's, such as the read replica's,
    with the same pool size and timeouts. Waiting for a free connection is bounded like
    connecting: DB_CONNECT_TIMEOUT_SECONDS."""
    url = url or settings.url
    target = DatabaseTarget.from_url(url.get_secret_value())
    return Database(create_pool(settings, url), settings.connect_timeout_seconds, target)


def create_pool(settings: DatabaseSettings, url: SecretStr | None = None) -> asyncpg.Pool:
    """A pool that connects nothing yet: ``await pool`` starts it without the database.

    The service must start (and report NOT_SERVING) while the database is still down, so
    connections are opened when requests need them, up to ``DB_POOL_SIZE``.
    """
    statement_timeout_ms = int(settings.statement_timeout_seconds * 1000)
    return asyncpg.create_pool(
        asyncpg_dsn((url or settings.url).get_secret_value()),
        min_size=0,
        max_size=settings.pool_size,
        max_inactive_connection_lifetime=IDLE_CONNECTION_LIFETIME_SECONDS,
        reset=_keep_session,
        timeout=settings.connect_timeout_seconds,
        command_timeout=settings.statement_timeout_seconds + 1,
        server_settings={
            "application_name": "post-service",
            "statement_timeout": str(statement_timeout_ms),
        },
    )


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """``postgresql+asyncpg://...`` (DB_URL, shared with Alembic) as asyncpg's own DSN.

    Several hosts are ``?host=db-1:5432&host=db-2:5432`` for SQLAlchemy, but asyncpg keeps
    only the last of repeated parameters: it wants them in the address, ``@db-1:5432,db-2:5432``.
    Every other parameter (``target_session_attrs``) passes through as it is.
    """
    address, _, query = sqlalchemy_url.split("://", 1)[1].partition("?")
    parameters = [p for p in query.split("&") if p]
    hosts = [unquote(p[len("host=") :]) for p in parameters if p.startswith("host=")]
    if hosts:
        credentials, _, path = address.rpartition("@")
        address = f"{credentials}@{','.join(hosts)}{path}"
        parameters = [p for p in parameters if not p.startswith("host=")]
    return f"postgresql://{address}" + (f"?{'&'.join(parameters)}" if parameters else "")


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset between requests.

    asyncpg's default reset sends ``RESET ALL; UNLISTEN *; ...`` on every release: a
    round trip per request. This service sets no session state, holds no session
    advisory locks (only transaction ones) and listens to nothing; an open transaction
    is still rolled back by the pool before this runs.
    """
