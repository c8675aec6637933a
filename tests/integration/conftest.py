from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devenv.postgres import LocalPostgres
from post_service.adapters.postgres.pool import Database, create_database
from post_service.config import DatabaseSettings


@pytest.fixture
async def db(db_url: str, postgres: LocalPostgres) -> AsyncIterator[Database]:
    postgres.psql("TRUNCATE posts, outbox RESTART IDENTITY CASCADE")  # and what refers to posts
    created = create_database(DatabaseSettings(url=db_url))
    await created.pool
    yield created
    await created.pool.close()
