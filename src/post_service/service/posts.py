"""The post use cases; each runs in one database transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from post_service.domain.errors import NotPostAuthor, PostNotFound, UserDeleted, UserNotFound
from post_service.domain.events import DeletionReason, PostCreated, PostDeleted, PostUpdated
from post_service.domain.paging import PageLimits, resolve_page
from post_service.domain.posts import (
    AuthoredPost,
    Post,
    PostSummary,
    require_id,
    validate_content,
    validate_username,
)
from post_service.service.ports import PostStore, PostWriter
from post_service.service.usernames import UsernameResolver


@dataclass(frozen=True, slots=True)
class PostRules:
    page_limits: PageLimits
    max_body_chars: int


class PostService:
    """Create, read, list, edit and delete posts. One instance per process."""

    def __init__(
        self,
        store: PostStore,
        usernames: UsernameResolver,
        rules: PostRules,
    ) -> None:
        self._store = store
        self._usernames = usernames
        self._rules = rules

    async def create_post(self, author_id: int, title: str, body: str) -> AuthoredPost:
        require_id("auth_id", author_id)
        content = validate_content(title, body, self._rules.max_body_chars)
        async with self._store.transaction() as tx:
            post = await tx.add_post(author_id, content)
            if post is None:
                raise UserDeleted(author_id)
            await tx.record_events([PostCreated(post)])
        return await self._with_username(post)

    async def get_post(self, post_id: int) -> AuthoredPost:
        require_id("post_id", post_id)
        async with self._store.reading() as reader:
            post = await reader.get_post(post_id)
        if post is None:
            raise PostNotFound(post_id)
        return await self._with_username(post)

    async def list_posts(self, limit: int, last_id: int) -> list[AuthoredPost]:
        page = resolve_page(limit, last_id, self._rules.page_limits)
        async with self._store.reading() as reader:
            posts = await reader.list_newest(page)
        return await self._with_usernames(posts)

    async def list_user_posts(self, username: str, caller_id: int) -> list[AuthoredPost]:
        author_id = await self._resolve_author(username, caller_id)
        async with self._store.reading() as reader:
            posts = await reader.list_by_author(author_id, self._rules.page_limits.max_size)
        if username:
            # We already know this author's name; no need to ask User-service again.
            return [AuthoredPost(post, username) for post in posts]
        return await self._with_usernames(posts)

    async def edit_post(self, caller_id: int, post_id: int, title: str, body: str) -> AuthoredPost:
        require_id("auth_id", caller_id)
        require_id("post_id", post_id)
        content = validate_content(title, body, self._rules.max_body_chars)
        async with self._store.transaction() as tx:
            post = await tx.update_if_author(post_id, caller_id, content)
            if post is None:
                if await tx.is_deleted_user(caller_id):
                    raise UserDeleted(caller_id)
                raise await _why_not_changed(tx, post_id)
            await tx.record_events([PostUpdated(post)])
        return await self._with_username(post)

    async def delete_post(self, caller_id: int, post_id: int) -> None:
        require_id("auth_id", caller_id)
        require_id("post_id", post_id)
        async with self._store.transaction() as tx:
            if not await tx.delete_if_author(post_id, caller_id):
                raise await _why_not_changed(tx, post_id)
            await tx.record_events([PostDeleted(post_id, caller_id, DeletionReason.AUTHOR)])

    async def _resolve_author(self, username: str, caller_id: int) -> int:
        if not username:
            return require_id("auth_id", caller_id)
        validate_username(username)
        author_id = await self._usernames.user_id(username)
        if author_id is None:
            raise UserNotFound(username)
        return author_id

    async def _with_username(self, post: Post) -> AuthoredPost:
        return AuthoredPost(post, await self._usernames.username(post.author_id))

    async def _with_usernames(self, posts: Sequence[PostSummary]) -> list[AuthoredPost]:
        if not posts:
            return []
        names = await self._usernames.usernames({post.author_id for post in posts})
        return [AuthoredPost(post, names.get(post.author_id, "")) for post in posts]


async def _why_not_changed(tx: PostWriter, post_id: int) -> Exception:
    """The author-only change touched no row: either no such post, or not the caller's."""
    if await tx.author_of(post_id) is None:
        return PostNotFound(post_id)
    return NotPostAuthor(post_id)
