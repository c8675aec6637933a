"""Alembic environment. `post-service migrate` hands in a connection that holds the
migration lock; a bare `alembic upgrade head` connects with DB_URL itself."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from post_service.adapters.postgres.tables import metadata
from post_service.config import DatabaseSettings


def run_on(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_with_own_engine() -> None:
    url = DatabaseSettings().url.get_secret_value()
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(run_on)
        await connection.commit()
    await engine.dispose()


given = context.config.attributes.get("connection")
if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
elif given is not None:
    run_on(given)
else:
    asyncio.run(run_with_own_engine())
