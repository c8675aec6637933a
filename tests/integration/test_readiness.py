"""Readiness names what is wrong with the database: unreachable, login, name, schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from devenv.postgres import PASSWORD, LocalPostgres
from post_service.adapters.postgres.pool import Database, create_database
from post_service.adapters.postgres.readiness import PostgresReadiness
from post_service.adapters.postgres.tables import SCHEMA_REVISION
from post_service.config import DatabaseSettings

pytestmark = pytest.mark.integration

ReadinessOf = Callable[[str], Awaitable[PostgresReadiness]]


@pytest.fixture
async def readiness_of() -> AsyncIterator[ReadinessOf]:
    opened: list[Database] = []

    async def open_readiness(url: str) -> PostgresReadiness:
        db = create_database(DatabaseSettings(url=url, connect_timeout_seconds=2))
        opened.append(db)
        await db.pool  # starts the pool; it connects nothing up front
        return PostgresReadiness(db)

    yield open_readiness
    for db in opened:
        db.pool.terminate()


async def test_a_migrated_database_is_ready(db_url: str, readiness_of: ReadinessOf) -> None:
    readiness = await readiness_of(db_url)
    assert await readiness.problem(timeout_seconds=3) is None


async def test_a_database_never_migrated_says_to_run_migrate(
    fresh_database: str, readiness_of: ReadinessOf
) -> None:
    readiness = await readiness_of(fresh_database)
    assert await readiness.problem(timeout_seconds=3) == (
        f"schema at revision base, this build needs {SCHEMA_REVISION}: run post-service migrate"
    )


async def test_an_older_schema_names_both_revisions(
    fresh_database: str,
    postgres: LocalPostgres,
    readiness_of: ReadinessOf,
) -> None:
    database = fresh_database.rsplit("/", 1)[1]
    postgres.psql(
        "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);"
        "INSERT INTO alembic_version VALUES ('0001')",
        database=database,
    )
    readiness = await readiness_of(fresh_database)
    problem = await readiness.problem(timeout_seconds=3)
    assert problem == (
        f"schema at revision 0001, this build needs {SCHEMA_REVISION}: run post-service migrate"
    )


async def test_a_wrong_password_is_named_without_the_password(
    postgres: LocalPostgres, readiness_of: ReadinessOf
) -> None:
    url = postgres.url.replace(PASSWORD, "not-the-password-x9")
    readiness = await readiness_of(url)
    problem = await readiness.problem(timeout_seconds=3)
    assert problem is not None
    assert problem.startswith(f'authentication failed for role "post" at 127.0.0.1:{postgres.port}')
    assert "not-the-password-x9" not in problem


async def test_a_missing_database_is_named(
    postgres: LocalPostgres, readiness_of: ReadinessOf
) -> None:
    url = postgres.url.rsplit("/", 1)[0] + "/no_such_db"
    readiness = await readiness_of(url)
    assert await readiness.problem(timeout_seconds=3) == (
        f'database "no_such_db" does not exist at 127.0.0.1:{postgres.port}'
    )


async def test_a_closed_port_is_connection_refused(
    readiness_of: ReadinessOf,
) -> None:
    readiness = await readiness_of("postgresql+asyncpg://u:p@127.0.0.1:1/x")
    assert await readiness.problem(timeout_seconds=3) == "connection refused by 127.0.0.1:1"
