from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from devenv.postgres import LocalPostgres
from post_service.adapters.postgres.pool import create_pool
from post_service.config import DatabaseSettings

ACQUIRE_TIMEOUT_SECONDS = 2.0


@pytest.fixture
async def pool(db_url: str, postgres: LocalPostgres) -> AsyncIterator[Any]:
    postgres.psql("TRUNCATE posts, outbox RESTART IDENTITY")
    created: asyncpg.Pool = await create_pool(DatabaseSettings(url=db_url))  # type: ignore[arg-type]
    yield created
    await created.close()
