"""Events a post change produces; each becomes one outbox row, then one Kafka message."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from post_service.domain.posts import Post


class DeletionReason(StrEnum):
    AUTHOR = "author"
    ADMIN = "admin"
    USER_DELETED = "user_deleted"


@dataclass(frozen=True, slots=True)
class PostCreated:
    post: Post


@dataclass(frozen=True, slots=True)
class PostUpdated:
    post: Post


@dataclass(frozen=True, slots=True)
class PostDeleted:
    post_id: int
    author_id: int
    reason: DeletionReason


PostEvent = PostCreated | PostUpdated | PostDeleted
