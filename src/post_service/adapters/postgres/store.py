"""Posts and their outbox rows in PostgreSQL: the ``PostStore`` port.

Plain SQL on asyncpg: each statement is prepared once per connection (asyncpg's
statement cache) and rows come back as records that map straight onto ``Post``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from post_service.adapters.postgres.pool import Database
from post_service.adapters.postgres.scopes import PooledQueries
from post_service.domain.events import PostEvent
from post_service.domain.paging import Page
from post_service.domain.posts import Post, PostContent, PostSummary
from post_service.messaging import encode_event, event_type, post_id_of

# Queries select their columns in the field order of Post or PostSummary, so that a row
# is ``Post(*row)`` (tests/unit/test_store_sql.py holds the two together). Listings skip
# the timestamps and version: decoding them was a tenth of a listing's CPU.
GET_POST = (
    "SELECT id, author_id, title, body, created_at, updated_at, version FROM posts WHERE id = $1"
)
LIST_NEWEST = "SELECT id, author_id, title, body FROM posts ORDER BY id DESC LIMIT $1"
LIST_OLDER_THAN = (
    "SELECT id, author_id, title, body FROM posts WHERE id < $2 ORDER BY id DESC LIMIT $1"
)
LIST_BY_AUTHOR = (
    "SELECT id, author_id, title, body FROM posts WHERE author_id = $1 ORDER BY id DESC LIMIT $2"
)
# A user's deletion and their CreatePosts exclude each other on this advisory lock
# (two-int4 form: key space apart from the one-int8 keys of migrations and the relay).
# The deletion holds it exclusively while it records the user as deleted; a create holds
# it shared, in its own statement before the INSERT: in READ COMMITTED the INSERT's
# snapshot is taken after the wait, so it sees a deletion that committed meanwhile, and a
# create that got in first has committed before the deletion starts removing posts.
DELETED_USER_LOCK_CLASS = 0x5053_4455  # "PSDU": post-service, deleted user
LOCK_AUTHOR_FOR_CREATE = "SELECT pg_advisory_xact_lock_shared($1, $2)"
LOCK_USER_FOR_DELETION = "SELECT pg_advisory_xact_lock($1, $2)"
ADD_POST = (
    "INSERT INTO posts (author_id, title, body) SELECT $1, $2, $3 "
    "WHERE NOT EXISTS (SELECT 1 FROM deleted_users WHERE user_id = $1) "
    "RETURNING id, author_id, title, body, created_at, updated_at, version"
)
# One statement: concurrent edits serialise on the row lock, none is lost.
UPDATE_IF_AUTHOR = (
    "UPDATE posts SET title = $3, body = $4, updated_at = now(), version = version + 1 "
    "WHERE id = $2 AND author_id = $1 "
    "AND NOT EXISTS (SELECT 1 FROM deleted_users WHERE user_id = $1) "
    "RETURNING id, author_id, title, body, created_at, updated_at, version"
)
DELETE_IF_AUTHOR = "DELETE FROM posts WHERE id = $1 AND author_id = $2 RETURNING id"
DELETE_POST = (
    "DELETE FROM posts WHERE id = $1 "
    "RETURNING id, author_id, title, body, created_at, updated_at, version"
)
# Waits for a post being edited right now (an edit holds its row lock for milliseconds):
# skipping it would leave it behind for good. Locking in id order keeps two deleters of
# one user deadlock-free.
DELETE_POSTS_OF_AUTHOR = (
    "DELETE FROM posts WHERE id IN (SELECT id FROM posts WHERE author_id = $1 "
    "ORDER BY id LIMIT $2 FOR UPDATE) RETURNING id"
)
RECORD_DELETED_USER = "INSERT INTO deleted_users (user_id) VALUES ($1) ON CONFLICT DO NOTHING"
IS_DELETED_USER = "SELECT EXISTS (SELECT 1 FROM deleted_users WHERE user_id = $1)"
AUTHOR_OF = "SELECT author_id FROM posts WHERE id = $1"
RECORD_EVENT = (
    "INSERT INTO outbox (event_id, event_type, post_id, payload, trace_context) "
    "VALUES ($1, $2, $3, $4, $5)"
)

TraceContextSource = Callable[[], Mapping[str, str]]


class PostgresPostStore(PooledQueries["PostgresPostQueries"]):
    """v1's queries, for reading or in a transaction; one instance per process."""

    def __init__(self, db: Database, trace_context: TraceContextSource = lambda: {}) -> None:
        super().__init__(db, lambda conn: PostgresPostQueries(conn, trace_context))


class PostgresPostQueries:
    """Post queries and changes on one connection (one transaction when writing)."""

    def __init__(self, conn: asyncpg.Connection, trace_context: TraceContextSource) -> None:
        self._conn = conn
        self._trace_context = trace_context

    async def get_post(self, post_id: int) -> Post | None:
        row = await self._conn.fetchrow(GET_POST, post_id)
        return Post(*row) if row else None

    async def list_newest(self, page: Page) -> Sequence[PostSummary]:
        if page.before_id is None:
            rows = await self._conn.fetch(LIST_NEWEST, page.size)
        else:
            rows = await self._conn.fetch(LIST_OLDER_THAN, page.size, page.before_id)
        return [PostSummary(*row) for row in rows]

    async def list_by_author(self, author_id: int, limit: int) -> Sequence[PostSummary]:
        rows = await self._conn.fetch(LIST_BY_AUTHOR, author_id, limit)
        return [PostSummary(*row) for row in rows]

    async def add_post(self, author_id: int, content: PostContent) -> Post | None:
        await self._conn.execute(LOCK_AUTHOR_FOR_CREATE, DELETED_USER_LOCK_CLASS, author_id)
        row = await self._conn.fetchrow(ADD_POST, author_id, content.title, content.body)
        return Post(*row) if row else None

    async def update_if_author(
        self, post_id: int, author_id: int, content: PostContent
    ) -> Post | None:
        row = await self._conn.fetchrow(
            UPDATE_IF_AUTHOR, author_id, post_id, content.title, content.body
        )
        return Post(*row) if row else None

    async def delete_if_author(self, post_id: int, author_id: int) -> bool:
        return await self._conn.fetchval(DELETE_IF_AUTHOR, post_id, author_id) is not None

    async def delete_post(self, post_id: int) -> Post | None:
        row = await self._conn.fetchrow(DELETE_POST, post_id)
        return Post(*row) if row else None

    async def delete_posts_of_author(self, author_id: int, limit: int) -> Sequence[int]:
        rows = await self._conn.fetch(DELETE_POSTS_OF_AUTHOR, author_id, limit)
        return sorted(row[0] for row in rows)

    async def record_deleted_user(self, user_id: int) -> None:
        await self._conn.execute(LOCK_USER_FOR_DELETION, DELETED_USER_LOCK_CLASS, user_id)
        await self._conn.execute(RECORD_DELETED_USER, user_id)

    async def is_deleted_user(self, user_id: int) -> bool:
        return bool(await self._conn.fetchval(IS_DELETED_USER, user_id))

    async def author_of(self, post_id: int) -> int | None:
        author_id: int | None = await self._conn.fetchval(AUTHOR_OF, post_id)
        return author_id

    async def record_events(self, events: Sequence[PostEvent]) -> None:
        if not events:
            return
        now = datetime.now(UTC)
        trace_context = json.dumps(dict(self._trace_context()))
        rows: list[tuple[Any, ...]] = []
        for event in events:
            event_id = uuid.uuid4()
            payload = encode_event(event, event_id, now)
            rows.append((event_id, event_type(event), post_id_of(event), payload, trace_context))
        if len(rows) == 1:
            await self._conn.execute(RECORD_EVENT, *rows[0])  # cheaper than executemany
        else:
            await self._conn.executemany(RECORD_EVENT, rows)
