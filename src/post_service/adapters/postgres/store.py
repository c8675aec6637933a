"""Posts and their outbox rows in PostgreSQL: the ``PostStore`` port."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from post_service.adapters.post_events import encode_event, event_type, post_id_of
from post_service.adapters.postgres.engine import is_unreachable, unavailable_when_unreachable
from post_service.adapters.postgres.tables import outbox, posts
from post_service.domain.events import PostEvent
from post_service.domain.paging import Page
from post_service.domain.posts import Post, PostContent

_POST_COLUMNS = (
    posts.c.id,
    posts.c.author_id,
    posts.c.title,
    posts.c.body,
    posts.c.created_at,
    posts.c.updated_at,
    posts.c.version,
)

TraceContextSource = Callable[[], Mapping[str, str]]


class PostgresPostStore:
    """Hands out a reader (autocommit) or a transaction; one instance per process."""

    def __init__(self, engine: AsyncEngine, trace_context: TraceContextSource = lambda: {}) -> None:
        self._engine = engine
        # Reads need no transaction: autocommit saves the BEGIN/COMMIT round trips.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._trace_context = trace_context

    async def ping(self, timeout_seconds: float) -> bool:
        """True when the database answers a trivial query within the timeout."""
        try:
            async with asyncio.timeout(timeout_seconds), self._autocommit.connect() as conn:
                await conn.execute(select(1))
        except Exception as error:
            if is_unreachable(error):
                return False
            raise
        return True

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[PostgresPosts]:
        async with unavailable_when_unreachable(), self._autocommit.connect() as conn:
            yield PostgresPosts(conn, self._trace_context)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresPosts]:
        async with unavailable_when_unreachable(), self._engine.begin() as conn:
            yield PostgresPosts(conn, self._trace_context)


class PostgresPosts:
    """Post queries and changes on one connection (one transaction when writing)."""

    def __init__(self, conn: AsyncConnection, trace_context: TraceContextSource) -> None:
        self._conn = conn
        self._trace_context = trace_context

    async def get_post(self, post_id: int) -> Post | None:
        row = (
            await self._conn.execute(select(*_POST_COLUMNS).where(posts.c.id == post_id))
        ).first()
        return _to_post(row) if row else None

    async def list_newest(self, page: Page) -> Sequence[Post]:
        query = select(*_POST_COLUMNS).order_by(posts.c.id.desc()).limit(page.size)
        if page.before_id is not None:
            query = query.where(posts.c.id < page.before_id)
        return [_to_post(row) for row in await self._conn.execute(query)]

    async def list_by_author(self, author_id: int, limit: int) -> Sequence[Post]:
        query = (
            select(*_POST_COLUMNS)
            .where(posts.c.author_id == author_id)
            .order_by(posts.c.id.desc())
            .limit(limit)
        )
        return [_to_post(row) for row in await self._conn.execute(query)]

    async def add_post(self, author_id: int, content: PostContent) -> Post:
        statement = (
            insert(posts)
            .values(author_id=author_id, title=content.title, body=content.body)
            .returning(*_POST_COLUMNS)
        )
        return _to_post((await self._conn.execute(statement)).one())

    async def update_if_author(
        self, post_id: int, author_id: int, content: PostContent
    ) -> Post | None:
        # One statement: concurrent edits serialise on the row lock, none is lost.
        statement = (
            update(posts)
            .where(and_(posts.c.id == post_id, posts.c.author_id == author_id))
            .values(
                title=content.title,
                body=content.body,
                updated_at=func.now(),
                version=posts.c.version + 1,
            )
            .returning(*_POST_COLUMNS)
        )
        row = (await self._conn.execute(statement)).first()
        return _to_post(row) if row else None

    async def delete_if_author(self, post_id: int, author_id: int) -> bool:
        statement = (
            delete(posts)
            .where(and_(posts.c.id == post_id, posts.c.author_id == author_id))
            .returning(posts.c.id)
        )
        return (await self._conn.execute(statement)).first() is not None

    async def delete_post(self, post_id: int) -> Post | None:
        statement = delete(posts).where(posts.c.id == post_id).returning(*_POST_COLUMNS)
        row = (await self._conn.execute(statement)).first()
        return _to_post(row) if row else None

    async def delete_posts_of_author(self, author_id: int, limit: int) -> Sequence[int]:
        batch = (
            select(posts.c.id)
            .where(posts.c.author_id == author_id)
            .order_by(posts.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        statement = delete(posts).where(posts.c.id.in_(batch)).returning(posts.c.id)
        return sorted((await self._conn.execute(statement)).scalars())

    async def author_of(self, post_id: int) -> int | None:
        query = select(posts.c.author_id).where(posts.c.id == post_id)
        return (await self._conn.execute(query)).scalar_one_or_none()

    async def record_events(self, events: Sequence[PostEvent]) -> None:
        if not events:
            return
        now = datetime.now(UTC)
        trace_context = json.dumps(dict(self._trace_context()))
        rows: list[dict[str, Any]] = []
        for event in events:
            event_id = uuid.uuid4()
            rows.append(
                {
                    "event_id": event_id,
                    "event_type": event_type(event),
                    "post_id": post_id_of(event),
                    "payload": encode_event(event, event_id, now),
                    "trace_context": trace_context,
                }
            )
        await self._conn.execute(insert(outbox), rows)


def _to_post(row: Row[tuple[Any, ...]]) -> Post:
    return Post(
        id=row.id,
        author_id=row.author_id,
        title=row.title,
        body=row.body,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )
