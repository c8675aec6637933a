"""The two ways a store hands out its queries: for reading, or inside a transaction.

v1 and v2 have their own queries on the same pool, and a read replica changes only where
reads go, so the handing out is written once here and the stores say just which queries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Generic, TypeVar

import asyncpg

from post_service.adapters.postgres.pool import Database

QueriesT = TypeVar("QueriesT")
ReaderT = TypeVar("ReaderT")


class PooledQueries(Generic[QueriesT]):
    """Queries on a pooled connection of the primary; one instance per process."""

    def __init__(self, db: Database, queries_on: Callable[[asyncpg.Connection], QueriesT]) -> None:
        self._db = db
        self._queries_on = queries_on

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[QueriesT]:
        # Reads need no transaction: autocommit saves the BEGIN/COMMIT round trips.
        async with self._db.connection() as conn:
            yield self._queries_on(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[QueriesT]:
        async with self._db.connection() as conn, conn.transaction():
            yield self._queries_on(conn)


class ReplicaRouted(Generic[ReaderT, QueriesT]):
    """Reads through ``reader`` (which picks replica or primary per query); transactions,
    with the reads inside them, on the primary as ever."""

    def __init__(self, primary: PooledQueries[QueriesT], reader: ReaderT) -> None:
        self._primary = primary
        self._reader = reader

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[ReaderT]:
        yield self._reader

    def transaction(self) -> AbstractAsyncContextManager[QueriesT]:
        return self._primary.transaction()
