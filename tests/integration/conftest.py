from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from devenv.postgres import LocalPostgres
from post_service.adapters.postgres.engine import create_engine
from post_service.config import DatabaseSettings


@pytest.fixture
async def engine(db_url: str, postgres: LocalPostgres) -> AsyncIterator[AsyncEngine]:
    postgres.psql("TRUNCATE posts, outbox RESTART IDENTITY")
    created = create_engine(DatabaseSettings(url=db_url))  # type: ignore[arg-type]
    yield created
    await created.dispose()
