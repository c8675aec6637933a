"""post.v2's queries: the ``PostStoreV2`` port, on the same tables and connections as v1.

Reads return times as microseconds since the epoch (``VersionedPost``): PostgreSQL does the
arithmetic, the service skips building two datetimes per post. Listings whose filters vary
are written per combination of filters, so that each is a plain indexable statement that
asyncpg prepares once per connection.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from post_service.adapters.postgres.pool import Database
from post_service.adapters.postgres.scopes import PooledQueries
from post_service.adapters.postgres.store import PostgresPostQueries, TraceContextSource
from post_service.domain.errors import DependencyUnavailable
from post_service.domain.listing import PostFilter, SearchFilter
from post_service.domain.posts import Post
from post_service.domain.versions import EPOCH, PostChange, Revision, VersionedPost
from post_service.service.ports_v2 import EarlierRequest, PostState

# Must be the configuration of the generated column (migration 0004).
TEXT_SEARCH_CONFIG = "russian"


def _micros(column: str) -> str:
    # date_part is float8 arithmetic, extract() numeric: a third of the listing's database
    # CPU. Exact to the microsecond: float8 carries 15.9 digits, and the cast rounds.
    return f"(date_part('epoch', {column}) * 1000000)::int8"


# In the field order of VersionedPost, so that a row is ``VersionedPost(*row)``.
VERSIONED_COLUMNS = (
    "id, author_id, title, body, "
    f"{_micros('created_at')} AS created_us, {_micros('updated_at')} AS updated_us, version"
)

# Statements are assembled from this module's constants only, never from request values
# (those are always parameters): hence the S608/B608 exemptions below.
GET_VERSIONED = f"SELECT {VERSIONED_COLUMNS} FROM posts WHERE id = $1"  # noqa: S608  # nosec B608
GET_MANY = (
    f"SELECT {VERSIONED_COLUMNS} FROM posts "  # noqa: S608  # nosec B608
    "WHERE id = ANY($1::int4[])"
)
POST_EXISTS = "SELECT EXISTS (SELECT 1 FROM posts WHERE id = $1)"
STATE_OF = "SELECT author_id, version FROM posts WHERE id = $1"
REVISION_COLUMNS = f"revision, title, body, {_micros('created_at')} AS created_us"
REVISIONS = (
    f"SELECT {REVISION_COLUMNS} FROM post_revisions "  # noqa: S608  # nosec B608
    "WHERE post_id = $1 ORDER BY revision DESC LIMIT $2"
)
REVISIONS_BEFORE = (
    f"SELECT {REVISION_COLUMNS} FROM post_revisions "  # noqa: S608  # nosec B608
    "WHERE post_id = $1 AND revision < $3 ORDER BY revision DESC LIMIT $2"
)
# Waits for a concurrent claim of the same id to commit or roll back (unique index).
CLAIM_REQUEST = (
    "INSERT INTO create_requests (request_id, fingerprint) VALUES ($1, $2) "
    "ON CONFLICT (request_id) DO NOTHING RETURNING request_id"
)
EARLIER_REQUEST = "SELECT fingerprint, post_id FROM create_requests WHERE request_id = $1"
ATTACH_REQUEST = "UPDATE create_requests SET post_id = $2 WHERE request_id = $1"
PRUNE_REQUESTS = (
    "DELETE FROM create_requests WHERE request_id IN (SELECT request_id FROM create_requests "
    "WHERE created_at < now() - $1::interval ORDER BY created_at LIMIT $2 "
    "FOR UPDATE SKIP LOCKED)"
)
# One statement, like v1's edit: the etag check, the author check and the change happen
# under the row lock together, so a stale etag can never change anything.
UPDATE_POST = (
    "UPDATE posts SET title = coalesce($3::text, title), body = coalesce($4::text, body), "
    "updated_at = now(), version = version + 1 "
    "WHERE id = $1 AND author_id = $2 AND ($5::int4 IS NULL OR version = $5) "
    "AND NOT EXISTS (SELECT 1 FROM deleted_users WHERE user_id = $2) "
    "RETURNING id, author_id, title, body, created_at, updated_at, version"
)
DELETE_POST_IF = (
    "DELETE FROM posts WHERE id = $1 AND author_id = $2 "
    "AND ($3::int4 IS NULL OR version = $3) RETURNING id"
)
SIGNING_KEY = "SELECT secret FROM signing_keys WHERE name = $1"


@functools.cache
def list_sql(author: bool, start: bool, end: bool, before: bool) -> str:
    """ListPosts for one combination of filters; $1 is the limit, the rest in this order."""
    conditions: list[str] = []
    for column, present in (
        ("author_id = ", author),
        ("created_at >= ", start),
        ("created_at < ", end),
        ("id < ", before),
    ):
        if present:
            conditions.append(f"{column}${len(conditions) + 2}")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return (
        f"SELECT {VERSIONED_COLUMNS} FROM posts{where} "  # noqa: S608  # nosec B608
        "ORDER BY id DESC LIMIT $1"
    )


@functools.cache
def search_sql(author: bool, after: bool) -> str:
    """SearchPosts: $1 the query, $2 the limit, then the author, then the last (rank, id)."""
    matches = "search @@ query" + (" AND author_id = $3" if author else "")
    first = 4 if author else 3
    keyset = f" WHERE (rank, id) < (${first}::real, ${first + 1}::int4)" if after else ""
    return (
        f"SELECT * FROM (SELECT {VERSIONED_COLUMNS}, "  # noqa: S608  # nosec B608
        "ts_rank(search, query) AS rank "
        f"FROM posts, websearch_to_tsquery('{TEXT_SEARCH_CONFIG}', $1) AS query "
        f"WHERE {matches}) AS found{keyset} ORDER BY rank DESC, id DESC LIMIT $2"
    )


class PostgresPostStoreV2(PooledQueries["PostgresPostQueriesV2"]):
    """v2's queries, for reading or in a transaction; one instance per process."""

    def __init__(self, db: Database, trace_context: TraceContextSource = lambda: {}) -> None:
        super().__init__(db, lambda conn: PostgresPostQueriesV2(conn, trace_context))

    async def page_token_key(self) -> bytes:
        async with self._db.connection() as conn:
            key = await conn.fetchval(SIGNING_KEY, "page_token")
        if key is None:  # migration 0004 makes it; without it the schema is not ours
            raise DependencyUnavailable("database schema")
        return bytes(key)


class PostgresPostQueriesV2(PostgresPostQueries):
    """v1's queries and changes on one connection, and v2's."""

    async def get_versioned(self, post_id: int) -> VersionedPost | None:
        row = await self._conn.fetchrow(GET_VERSIONED, post_id)
        return VersionedPost(*row) if row else None

    async def get_many(self, post_ids: Sequence[int]) -> Sequence[VersionedPost]:
        return [VersionedPost(*row) for row in await self._conn.fetch(GET_MANY, post_ids)]

    async def list_filtered(
        self, where: PostFilter, before_id: int | None, limit: int
    ) -> Sequence[VersionedPost]:
        values: list[Any] = [
            value
            for value in (
                where.author_id,
                _moment(where.created_from_us),
                _moment(where.created_until_us),
                before_id,
            )
            if value is not None
        ]
        sql = list_sql(
            where.author_id is not None,
            where.created_from_us is not None,
            where.created_until_us is not None,
            before_id is not None,
        )
        return [VersionedPost(*row) for row in await self._conn.fetch(sql, limit, *values)]

    async def search(
        self, where: SearchFilter, after: tuple[float, int] | None, limit: int
    ) -> Sequence[tuple[VersionedPost, float]]:
        values: list[Any] = [where.query, limit]
        if where.author_id is not None:
            values.append(where.author_id)
        if after is not None:
            values += after
        rows = await self._conn.fetch(
            search_sql(where.author_id is not None, after is not None), *values
        )
        return [(VersionedPost(*row[:-1]), float(row[-1])) for row in rows]

    async def list_revisions(
        self, post_id: int, before_revision: int | None, limit: int
    ) -> Sequence[Revision]:
        if before_revision is None:
            rows = await self._conn.fetch(REVISIONS, post_id, limit)
        else:
            rows = await self._conn.fetch(REVISIONS_BEFORE, post_id, limit, before_revision)
        return [Revision(*row) for row in rows]

    async def post_exists(self, post_id: int) -> bool:
        return bool(await self._conn.fetchval(POST_EXISTS, post_id))

    async def claim_request(
        self, request_id: uuid.UUID, fingerprint: bytes
    ) -> EarlierRequest | None:
        if await self._conn.fetchval(CLAIM_REQUEST, request_id, fingerprint) is not None:
            return None
        # READ COMMITTED: this statement sees the claim that made ours wait, committed.
        row = await self._conn.fetchrow(EARLIER_REQUEST, request_id)
        if row is None:  # pruned in between: at least a day old, and gone now
            return await self.claim_request(request_id, fingerprint)
        return EarlierRequest(fingerprint=bytes(row[0]), post_id=row[1])

    async def attach_request(self, request_id: uuid.UUID, post_id: int) -> None:
        await self._conn.execute(ATTACH_REQUEST, request_id, post_id)

    async def prune_requests(self, older_than: timedelta, limit: int) -> int:
        status: str = await self._conn.execute(PRUNE_REQUESTS, older_than, limit)
        return int(status.rsplit(" ", 1)[1])

    async def update_post(
        self, post_id: int, author_id: int, change: PostChange, expected_version: int | None
    ) -> Post | None:
        row = await self._conn.fetchrow(
            UPDATE_POST, post_id, author_id, change.title, change.body, expected_version
        )
        return Post(*row) if row else None

    async def delete_post_if(
        self, post_id: int, author_id: int, expected_version: int | None
    ) -> bool:
        deleted = await self._conn.fetchval(DELETE_POST_IF, post_id, author_id, expected_version)
        return deleted is not None

    async def state_of(self, post_id: int) -> PostState | None:
        row = await self._conn.fetchrow(STATE_OF, post_id)
        return PostState(author_id=row[0], version=row[1]) if row else None


def _moment(micros: int | None) -> Any:
    return None if micros is None else EPOCH + timedelta(microseconds=micros)
