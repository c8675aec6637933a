"""Is the database usable by this build: reachable, logged in to, and migrated far enough."""

from __future__ import annotations

import asyncio

import asyncpg

from post_service.adapters.postgres.errors import explain_connect_failure
from post_service.adapters.postgres.pool import Database
from post_service.adapters.postgres.tables import SCHEMA_REVISION
from post_service.domain.errors import DependencyUnavailable

CURRENT_REVISION = "SELECT version_num FROM alembic_version"


class PostgresReadiness:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def problem(self, timeout_seconds: float) -> str | None:
        """None when ready; else one line saying what is wrong and, where known, what to do."""
        try:
            async with asyncio.timeout(timeout_seconds), self._db.connection() as conn:
                try:
                    revision: str | None = await conn.fetchval(CURRENT_REVISION)
                except asyncpg.UndefinedTableError:
                    revision = None  # never migrated
        except TimeoutError:
            return f"database at {self._db.target} did not answer within {timeout_seconds:g} s"
        except DependencyUnavailable as error:
            failure = explain_connect_failure(error, self._db.target, self._db.acquire_timeout)
            return failure.reason if failure else f"database unavailable ({error.__cause__!r})"
        if revision != SCHEMA_REVISION:
            return (
                f"schema at revision {revision or 'base'}, this build needs {SCHEMA_REVISION}: "
                "run post-service migrate"
            )
        return None
