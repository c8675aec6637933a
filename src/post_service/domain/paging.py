"""Keyset paging rules for post listings (newest first)."""

from __future__ import annotations

from dataclasses import dataclass

from post_service.domain.errors import InvalidPost


@dataclass(frozen=True, slots=True)
class PageLimits:
    default_size: int
    max_size: int


@dataclass(frozen=True, slots=True)
class Page:
    """``size`` posts with ids below ``before_id`` (None: from the newest)."""

    size: int
    before_id: int | None


def resolve_page(limit: int, last_id: int, limits: PageLimits) -> Page:
    if limit < 0:
        raise InvalidPost("limit", "must not be negative")
    if last_id < 0:
        raise InvalidPost("last_id", "must not be negative")
    size = limits.default_size if limit == 0 else min(limit, limits.max_size)
    return Page(size=size, before_id=last_id or None)
