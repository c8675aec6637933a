"""What the use cases need from the outside world. Adapters implement these."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from post_service.domain.events import PostEvent
from post_service.domain.paging import Page
from post_service.domain.posts import Post, PostContent, PostSummary


class PostReader(Protocol):
    async def get_post(self, post_id: int) -> Post | None: ...

    async def list_newest(self, page: Page) -> Sequence[PostSummary]: ...

    async def list_by_author(self, author_id: int, limit: int) -> Sequence[PostSummary]: ...


class PostWriter(PostReader, Protocol):
    """Changes to posts and the events they cause, committed together or not at all."""

    async def add_post(self, author_id: int, content: PostContent) -> Post | None:
        """The stored post; None when the author's account was deleted (nothing stored).

        A deletion that commits while this runs either refuses it or, if this got in
        first, waits for this transaction and then removes the post with the others.
        """
        ...

    async def update_if_author(
        self, post_id: int, author_id: int, content: PostContent
    ) -> Post | None:
        """The changed post; None when it does not exist, is not the author's, or the
        author's account was deleted."""
        ...

    async def delete_if_author(self, post_id: int, author_id: int) -> bool: ...

    async def delete_post(self, post_id: int) -> Post | None: ...

    async def delete_posts_of_author(self, author_id: int, limit: int) -> Sequence[int]: ...

    async def record_deleted_user(self, user_id: int) -> None:
        """Remember the account as deleted (idempotent): from this commit on, ``add_post``
        and ``update_if_author`` refuse it. Waits for its ``add_post`` calls in flight."""
        ...

    async def is_deleted_user(self, user_id: int) -> bool: ...

    async def author_of(self, post_id: int) -> int | None: ...

    async def record_events(self, events: Sequence[PostEvent]) -> None: ...


class PostStore(Protocol):
    def reading(self) -> AbstractAsyncContextManager[PostReader]: ...

    def transaction(self) -> AbstractAsyncContextManager[PostWriter]: ...


class UserDirectory(Protocol):
    """User-service. Raises ``DependencyUnavailable`` when it cannot answer in time."""

    async def usernames(self, user_ids: Collection[int]) -> Mapping[int, str]: ...

    async def user_id(self, username: str) -> int | None: ...
