"""What the post.v2 use cases need from the store, beyond the v1 ports they build on."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from post_service.domain.listing import PostFilter, SearchFilter
from post_service.domain.posts import Post
from post_service.domain.versions import PostChange, Revision, VersionedPost
from post_service.service.ports import PostWriter


@dataclass(frozen=True, slots=True)
class EarlierRequest:
    """A create request id seen before: what it was for, and the post it created."""

    fingerprint: bytes
    post_id: int | None


@dataclass(frozen=True, slots=True)
class PostState:
    author_id: int
    version: int


class PostReaderV2(Protocol):
    async def get_versioned(self, post_id: int) -> VersionedPost | None: ...

    async def get_many(self, post_ids: Sequence[int]) -> Sequence[VersionedPost]: ...

    async def list_filtered(
        self, where: PostFilter, before_id: int | None, limit: int
    ) -> Sequence[VersionedPost]:
        """Newest first (id descending), ids below ``before_id`` when given."""
        ...

    async def search(
        self, where: SearchFilter, after: tuple[float, int] | None, limit: int
    ) -> Sequence[tuple[VersionedPost, float]]:
        """Matches with their rank, best first then newest; ``after`` is the (rank, id) of
        the last match already shown."""
        ...

    async def list_revisions(
        self, post_id: int, before_revision: int | None, limit: int
    ) -> Sequence[Revision]: ...

    async def post_exists(self, post_id: int) -> bool: ...


class PostWriterV2(PostWriter, PostReaderV2, Protocol):
    async def claim_request(
        self, request_id: uuid.UUID, fingerprint: bytes
    ) -> EarlierRequest | None:
        """None when this transaction claimed the id (first use); else the earlier use.

        A concurrent claim of the same id waits until the first one's transaction ends,
        then sees its outcome: committed (the earlier use) or rolled back (a fresh claim).
        """
        ...

    async def attach_request(self, request_id: uuid.UUID, post_id: int) -> None: ...

    async def prune_requests(self, older_than: timedelta, limit: int) -> int: ...

    async def update_post(
        self, post_id: int, author_id: int, change: PostChange, expected_version: int | None
    ) -> Post | None:
        """The edited post; None (nothing changed) when it does not exist, is not the
        author's, the author's account was deleted, or its version is not the expected one."""
        ...

    async def delete_post_if(
        self, post_id: int, author_id: int, expected_version: int | None
    ) -> bool: ...

    async def state_of(self, post_id: int) -> PostState | None: ...


class PostStoreV2(Protocol):
    def reading(self) -> AbstractAsyncContextManager[PostReaderV2]: ...

    def transaction(self) -> AbstractAsyncContextManager[PostWriterV2]: ...

    async def page_token_key(self) -> bytes:
        """The key page tokens are signed with, the same for every replica."""
        ...
