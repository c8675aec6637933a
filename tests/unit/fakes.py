"""In-memory stand-ins for the service's ports, for testing business rules without I/O."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from post_service.domain.errors import DependencyUnavailable
from post_service.domain.events import PostEvent
from post_service.domain.paging import Page
from post_service.domain.posts import Post, PostContent, PostSummary
from post_service.messaging import OutboundMessage, OutboxBacklog, Publish


@dataclass
class FakeData:
    posts: dict[int, Post] = field(default_factory=dict)
    deleted_users: set[int] = field(default_factory=set)
    events: list[PostEvent] = field(default_factory=list)
    next_id: int = 1


class FakePostStore:
    """The ``PostStore`` port in memory. A transaction's changes land only if it succeeds.

    ``batch_caps``, when given, caps successive ``delete_posts_of_author`` batches below
    the limit asked for: a store may answer a short batch before the end.
    """

    def __init__(self, batch_caps: Iterator[int] | None = None) -> None:
        self.data = FakeData()
        self.batch_caps = batch_caps

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[FakePosts]:
        yield FakePosts(self.data, self.batch_caps)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakePosts]:
        draft = copy.deepcopy(self.data)
        yield FakePosts(draft, self.batch_caps)
        self.data = draft

    def posts_of(self, author_id: int) -> list[int]:
        return sorted(p.id for p in self.data.posts.values() if p.author_id == author_id)


class FakePosts:
    def __init__(self, data: FakeData, batch_caps: Iterator[int] | None) -> None:
        self._data = data
        self._batch_caps = batch_caps

    async def get_post(self, post_id: int) -> Post | None:
        return self._data.posts.get(post_id)

    async def list_newest(self, page: Page) -> Sequence[PostSummary]:
        ids = sorted(self._data.posts, reverse=True)
        if page.before_id is not None:
            ids = [i for i in ids if i < page.before_id]
        return [self._data.posts[i] for i in ids[: page.size]]

    async def list_by_author(self, author_id: int, limit: int) -> Sequence[PostSummary]:
        mine = [p for p in self._data.posts.values() if p.author_id == author_id]
        return sorted(mine, key=lambda p: p.id, reverse=True)[:limit]

    async def add_post(self, author_id: int, content: PostContent) -> Post | None:
        if author_id in self._data.deleted_users:
            return None
        now = datetime.now(UTC)
        post = Post(self._data.next_id, author_id, content.title, content.body, now, now, 1)
        self._data.posts[post.id] = post
        self._data.next_id += 1
        return post

    async def update_if_author(
        self, post_id: int, author_id: int, content: PostContent
    ) -> Post | None:
        post = self._data.posts.get(post_id)
        if post is None or post.author_id != author_id or author_id in self._data.deleted_users:
            return None
        # A new object, as a database row would be: events keep the version they recorded.
        edited = dataclasses.replace(
            post,
            title=content.title,
            body=content.body,
            version=post.version + 1,
            updated_at=datetime.now(UTC),
        )
        self._data.posts[post_id] = edited
        return edited

    async def delete_if_author(self, post_id: int, author_id: int) -> bool:
        post = self._data.posts.get(post_id)
        if post is None or post.author_id != author_id:
            return False
        del self._data.posts[post_id]
        return True

    async def delete_post(self, post_id: int) -> Post | None:
        return self._data.posts.pop(post_id, None)

    async def delete_posts_of_author(self, author_id: int, limit: int) -> Sequence[int]:
        if self._batch_caps is not None:
            limit = min(limit, next(self._batch_caps, limit))
        mine = sorted(p.id for p in self._data.posts.values() if p.author_id == author_id)
        for post_id in mine[:limit]:
            del self._data.posts[post_id]
        return mine[:limit]

    async def record_deleted_user(self, user_id: int) -> None:
        self._data.deleted_users.add(user_id)

    async def is_deleted_user(self, user_id: int) -> bool:
        return user_id in self._data.deleted_users

    async def author_of(self, post_id: int) -> int | None:
        post = self._data.posts.get(post_id)
        return post.author_id if post else None

    async def record_events(self, events: Sequence[PostEvent]) -> None:
        self._data.events.extend(events)


class FakeUserDirectory:
    """User-service: knows ``names``, or without them every id as ``user-<id>``; records
    what it was asked, and raises ``DependencyUnavailable`` while ``down``."""

    def __init__(self, names: dict[int, str] | None = None) -> None:
        self.names = names if names is not None else {}
        self.knows_everyone = names is None
        self.down = False
        self.requests: list[list[int]] = []
        self.name_requests: list[str] = []

    async def usernames(self, user_ids: Collection[int]) -> Mapping[int, str]:
        self.requests.append(sorted(user_ids))
        self._answer_or_fail()
        if self.knows_everyone:
            return {user_id: f"user-{user_id}" for user_id in user_ids}
        return {i: self.names[i] for i in user_ids if i in self.names}

    async def user_id(self, username: str) -> int | None:
        self.name_requests.append(username)
        self._answer_or_fail()
        if self.knows_everyone:
            prefix, _, number = username.partition("-")
            return int(number) if prefix == "user" and number.isdigit() else None
        return next((i for i, name in self.names.items() if name == username), None)

    def _answer_or_fail(self) -> None:
        if self.down:
            raise DependencyUnavailable("user-service")


class FakeOutbox:
    """Pending messages in order; a row is marked sent only after publish returned."""

    def __init__(self, pending: list[bytes]) -> None:
        self.pending = [OutboundMessage(key=b"1", value=value) for value in pending]
        self.sent: list[bytes] = []

    async def relay_pending(self, publish: Publish, limit: int) -> int:
        batch = self.pending[:limit]
        if not batch:
            return 0
        await publish(batch)
        del self.pending[: len(batch)]
        self.sent += [message.value for message in batch]
        return len(batch)

    async def prune_sent(self, older_than: timedelta) -> int:
        return 0

    async def backlog(self) -> OutboxBacklog:
        return OutboxBacklog(pending=len(self.pending), oldest_age_seconds=0.0)
