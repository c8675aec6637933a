"""post.v2 listing rules: page sizes, filters (each the scope of its page tokens), queries."""

from __future__ import annotations

from dataclasses import dataclass

from post_service.domain.errors import InvalidPost
from post_service.domain.paging import PageLimits

MAX_BATCH_IDS = 100
MAX_QUERY_CHARS = 1_000
# The years 1..9999 (Python's datetime), in µs since the Unix epoch.
MIN_TIME_US = -62_135_596_800_000_000
MAX_TIME_US = 253_402_300_799_999_999


def resolve_page_size(page_size: int, limits: PageLimits) -> int:
    """v1's rule: 0 is the default size, larger sizes are capped, negative ones refused."""
    if page_size < 0:
        raise InvalidPost("page_size", "must not be negative")
    return limits.default_size if page_size == 0 else min(page_size, limits.max_size)


@dataclass(frozen=True, slots=True)
class PostFilter:
    """ListPosts: an author and a creation window [start, end), in µs since the epoch."""

    author_id: int | None = None
    created_from_us: int | None = None
    created_until_us: int | None = None

    def scope(self) -> str:
        return f"ListPosts:{self.author_id}:{self.created_from_us}:{self.created_until_us}"


@dataclass(frozen=True, slots=True)
class SearchFilter:
    query: str
    author_id: int | None = None

    def scope(self) -> str:
        return f"SearchPosts:{self.author_id}:{self.query}"


def revisions_scope(post_id: int) -> str:
    return f"ListPostRevisions:{post_id}"


def validate_window(start_us: int | None, end_us: int | None) -> None:
    for field, value in (("create_time_start", start_us), ("create_time_end", end_us)):
        if value is not None and not MIN_TIME_US <= value <= MAX_TIME_US:
            raise InvalidPost(field, "must be between the years 1 and 9999")
    if start_us is not None and end_us is not None and end_us <= start_us:
        raise InvalidPost("create_time_end", "must be after create_time_start")


def validate_query(query: str) -> str:
    if not query.strip():
        raise InvalidPost("query", "must not be blank")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidPost("query", f"must be at most {MAX_QUERY_CHARS} characters")
    if "\x00" in query:
        raise InvalidPost("query", "must not contain NUL characters")
    return query


def validate_batch(ids: list[int]) -> list[int]:
    if not ids:
        raise InvalidPost("ids", f"must name 1 to {MAX_BATCH_IDS} posts")
    if len(ids) > MAX_BATCH_IDS:
        raise InvalidPost("ids", f"must hold at most {MAX_BATCH_IDS} ids, got {len(ids)}")
    for index, post_id in enumerate(ids):
        if post_id <= 0:
            raise InvalidPost(f"ids[{index}]", "must be a positive id")
    return ids
