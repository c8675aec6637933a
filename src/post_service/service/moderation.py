"""Deletions the rest of the platform asks for through Kafka: a moderator's, a deleted user's."""

from __future__ import annotations

from collections.abc import Sequence

from post_service.domain.events import DeletionReason, PostDeleted
from post_service.domain.posts import require_id
from post_service.service.ports import PostStore


class ModerationService:
    def __init__(self, store: PostStore, batch_size: int) -> None:
        self._store = store
        self._batch_size = batch_size

    async def remove_post(self, post_id: int) -> bool:
        """Delete one post for a moderator; False when it was already gone (a replay)."""
        require_id("id", post_id)
        async with self._store.transaction() as tx:
            post = await tx.delete_post(post_id)
            if post is None:
                return False
            await tx.record_events([PostDeleted(post.id, post.author_id, DeletionReason.ADMIN)])
        return True

    async def remove_posts_of_user(self, user_id: int) -> int:
        """Delete every post of a deleted user, in bounded batches; returns how many.

        The user is recorded as deleted first, so no post of theirs can be created or
        edited from then on; then batches run until one finds nothing left. Each batch
        commits with its events: a crash part-way leaves a consistent state, and a replay
        of the message deletes the rest.
        """
        require_id("id", user_id)
        async with self._store.transaction() as tx:
            await tx.record_deleted_user(user_id)
        deleted = 0
        while post_ids := await self._remove_batch(user_id):
            deleted += len(post_ids)
        return deleted

    async def _remove_batch(self, user_id: int) -> Sequence[int]:
        # Only an empty batch proves nothing is left: stopping at a short one once left
        # behind every post that a SKIP LOCKED query had passed over.
        async with self._store.transaction() as tx:
            post_ids = await tx.delete_posts_of_author(user_id, self._batch_size)
            await tx.record_events(
                [PostDeleted(post_id, user_id, DeletionReason.USER_DELETED) for post_id in post_ids]
            )
        return post_ids
