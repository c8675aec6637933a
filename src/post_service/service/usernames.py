"""Author ids to usernames and back: one User-service call per response, cached briefly."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping

from cachetools import TLRUCache

from post_service.domain.errors import DependencyUnavailable
from post_service.service.degradation import mark_degraded
from post_service.service.ports import UserDirectory

log = logging.getLogger(__name__)


# A cold start caches most names within seconds; with one lifetime they would all expire
# together and come back as one burst of User-service calls, a latency spike a TTL later
# (docs/benchmarks.md, "GetByIdUserPost's p99 spikes"). Each user's entries live between
# 80% and 100% of the TTL instead, so those refills spread over a fifth of it.
LIFETIME_SPREAD = 0.2
_GOLDEN_RATIO_FRACTION = 0.6180339887498949


def lifetime_share(user_id: int) -> float:
    """The share of the TTL this user's entries live, in (1 - LIFETIME_SPREAD, 1].

    Set by the id, not drawn at random, so that the name and the id of one user (two caches)
    expire together; consecutive ids land evenly apart (a golden-ratio sequence).
    """
    return 1.0 - LIFETIME_SPREAD * ((user_id * _GOLDEN_RATIO_FRACTION) % 1.0)


class UsernameResolver:
    """Usernames for a set of author ids, degrading to "" when User-service cannot answer.

    A forum page must still render when User-service is down, so a failed lookup is
    not an error: the names it could not find come back empty, and the response is
    marked degraded (``service/degradation.py``), which the metrics count.

    Usernames are also resolved the other way (a user's page lists posts by username),
    from the same answers: a name is cached as long as the id it belongs to, so a renamed
    user's old name can still list their posts for up to ``cache_ttl_seconds``.
    """

    def __init__(
        self,
        directory: UserDirectory,
        cache_ttl_seconds: float,
        cache_size: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._cache: TLRUCache[int, str] | None = None
        self._ids: TLRUCache[str, int] | None = None
        if cache_size > 0 and cache_ttl_seconds > 0:

            def expiry(user_id: int, now: float) -> float:
                return now + cache_ttl_seconds * lifetime_share(user_id)

            self._cache = TLRUCache(
                cache_size, ttu=lambda user_id, _name, now: expiry(user_id, now), timer=clock
            )
            self._ids = TLRUCache(
                cache_size, ttu=lambda _name, user_id, now: expiry(user_id, now), timer=clock
            )

    async def usernames(self, user_ids: Collection[int]) -> Mapping[int, str]:
        known, missing = self._from_cache(user_ids)
        if not missing:
            return known
        try:
            fetched = await self._directory.usernames(missing)
        except DependencyUnavailable:
            log.warning("user-service unavailable, answering with empty usernames")
            mark_degraded()
            return known
        self._remember(fetched)
        return {**known, **fetched}

    async def username(self, user_id: int) -> str:
        return (await self.usernames((user_id,))).get(user_id, "")

    async def user_id(self, username: str) -> int | None:
        """The id of the user with this name, None if there is none.

        Raises ``DependencyUnavailable``: without the id there is nothing to answer.
        """
        if self._ids is not None and (known := self._ids.get(username)) is not None:
            return known
        user_id = await self._directory.user_id(username)
        if user_id is not None:
            self._remember({user_id: username})
        return user_id

    def _from_cache(self, user_ids: Collection[int]) -> tuple[dict[int, str], list[int]]:
        known: dict[int, str] = {}
        missing: list[int] = []
        for user_id in dict.fromkeys(user_ids):
            name = self._cache.get(user_id) if self._cache is not None else None
            if name is None:
                missing.append(user_id)
            else:
                known[user_id] = name
        return known, missing

    def _remember(self, fetched: Mapping[int, str]) -> None:
        if self._cache is None or self._ids is None:
            return
        for user_id, name in fetched.items():
            if name:  # an unknown id is not cached: the user may be created any moment
                self._cache[user_id] = name
                self._ids[name] = user_id
