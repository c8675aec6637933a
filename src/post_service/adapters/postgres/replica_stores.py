"""The v1 and v2 stores with a read replica: reads routed by ``ReadReplica``, transactions
(writes, and the reads inside them) on the primary as ever.

Posts asked for by id (GetByIdPost; GetPost, BatchGetPosts, ListPostRevisions) are read
``fresh``, as on the primary; listings (GetGroupPost, GetByIdUserPost; ListPosts,
SearchPosts) as far as the replica has replayed. See adapters/postgres/replica.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from post_service.adapters.postgres.replica import ReadReplica
from post_service.adapters.postgres.scopes import ReplicaRouted
from post_service.adapters.postgres.store import PostgresPostQueries, PostgresPostStore
from post_service.adapters.postgres.store_v2 import PostgresPostQueriesV2, PostgresPostStoreV2
from post_service.domain.listing import PostFilter, SearchFilter
from post_service.domain.paging import Page
from post_service.domain.posts import Post, PostSummary
from post_service.domain.versions import Revision, VersionedPost


class ReplicaPostStore(ReplicaRouted["ReplicaPostReader", PostgresPostQueries]):
    def __init__(self, store: PostgresPostStore, replica: ReadReplica) -> None:
        super().__init__(store, ReplicaPostReader(replica))


class ReplicaPostStoreV2(ReplicaRouted["ReplicaPostReaderV2", PostgresPostQueriesV2]):
    def __init__(self, store: PostgresPostStoreV2, replica: ReadReplica) -> None:
        super().__init__(store, ReplicaPostReaderV2(replica))
        self._store = store

    async def page_token_key(self) -> bytes:
        return await self._store.page_token_key()  # read once per process: the primary's


class ReplicaPostReader:
    def __init__(self, replica: ReadReplica) -> None:
        self._replica = replica

    async def get_post(self, post_id: int) -> Post | None:
        return await self._replica.fresh(lambda conn: _v1(conn).get_post(post_id))

    async def list_newest(self, page: Page) -> Sequence[PostSummary]:
        return await self._replica.listing(lambda conn: _v1(conn).list_newest(page))

    async def list_by_author(self, author_id: int, limit: int) -> Sequence[PostSummary]:
        return await self._replica.listing(lambda conn: _v1(conn).list_by_author(author_id, limit))


class ReplicaPostReaderV2:
    def __init__(self, replica: ReadReplica) -> None:
        self._replica = replica

    async def get_versioned(self, post_id: int) -> VersionedPost | None:
        return await self._replica.fresh(lambda conn: _v2(conn).get_versioned(post_id))

    async def get_many(self, post_ids: Sequence[int]) -> Sequence[VersionedPost]:
        return await self._replica.fresh(lambda conn: _v2(conn).get_many(post_ids))

    async def list_filtered(
        self, where: PostFilter, before_id: int | None, limit: int
    ) -> Sequence[VersionedPost]:
        return await self._replica.listing(
            lambda conn: _v2(conn).list_filtered(where, before_id, limit)
        )

    async def search(
        self, where: SearchFilter, after: tuple[float, int] | None, limit: int
    ) -> Sequence[tuple[VersionedPost, float]]:
        return await self._replica.listing(lambda conn: _v2(conn).search(where, after, limit))

    async def list_revisions(
        self, post_id: int, before_revision: int | None, limit: int
    ) -> Sequence[Revision]:
        return await self._replica.fresh(
            lambda conn: _v2(conn).list_revisions(post_id, before_revision, limit)
        )

    async def post_exists(self, post_id: int) -> bool:
        return await self._replica.fresh(lambda conn: _v2(conn).post_exists(post_id))


# Readers never record events, so they carry no trace context.
def _v1(conn: asyncpg.Connection) -> PostgresPostQueries:
    return PostgresPostQueries(conn, lambda: {})


def _v2(conn: asyncpg.Connection) -> PostgresPostQueriesV2:
    return PostgresPostQueriesV2(conn, lambda: {})
