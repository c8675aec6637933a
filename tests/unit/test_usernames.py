from __future__ import annotations

import asyncio

import pytest

from post_service.domain.errors import DependencyUnavailable
from post_service.service.degradation import DegradationWatch
from post_service.service.usernames import UsernameResolver, lifetime_share
from tests.unit.fakes import FakeUserDirectory


def resolver(directory: FakeUserDirectory, ttl: float = 60, size: int = 100) -> UsernameResolver:
    return UsernameResolver(directory, cache_ttl_seconds=ttl, cache_size=size)


async def test_many_ids_are_resolved_in_one_request_without_duplicates() -> None:
    directory = FakeUserDirectory({1: "ann", 2: "bob", 3: "cy"})
    names = await resolver(directory).usernames([3, 1, 3, 2, 1])
    assert names == {1: "ann", 2: "bob", 3: "cy"}
    assert directory.requests == [[1, 2, 3]]


async def test_cached_names_are_not_asked_again_and_only_misses_are() -> None:
    directory = FakeUserDirectory({1: "ann", 2: "bob"})
    names = resolver(directory)
    await names.usernames([1])
    assert await names.usernames([1, 2]) == {1: "ann", 2: "bob"}
    assert directory.requests == [[1], [2]]


async def test_unknown_users_are_not_cached() -> None:
    directory = FakeUserDirectory({})
    names = resolver(directory)
    assert await names.username(5) == ""
    directory.names[5] = "new-user"
    assert await names.username(5) == "new-user"


async def test_the_cache_is_bounded() -> None:
    directory = FakeUserDirectory({i: f"u{i}" for i in range(10)})
    names = resolver(directory, size=2)
    await names.usernames(range(10))
    await names.usernames(range(10))
    assert len(directory.requests) == 2
    assert len(directory.requests[1]) >= 8


async def test_zero_ttl_disables_the_cache() -> None:
    directory = FakeUserDirectory({1: "ann"})
    names = resolver(directory, ttl=0)
    await names.username(1)
    await names.username(1)
    assert len(directory.requests) == 2


async def test_user_service_down_degrades_to_empty_names_and_marks_the_response() -> None:
    directory = FakeUserDirectory({1: "ann", 2: "bob"})
    names = resolver(directory)
    with DegradationWatch() as whole:
        await names.username(1)
    assert not whole.degraded
    directory.down = True
    with DegradationWatch() as cached:
        assert await names.usernames([1, 2]) == {1: "ann"}  # the cached name still helps
    assert cached.degraded
    with DegradationWatch() as empty:
        assert await names.username(2) == ""
    assert empty.degraded


async def test_a_mark_reaches_the_watch_from_a_task_the_request_started() -> None:
    directory = FakeUserDirectory({1: "ann"})
    directory.down = True
    names = resolver(directory)
    with DegradationWatch() as watch:
        await asyncio.create_task(names.usernames([1]))
    assert watch.degraded


async def test_a_username_is_resolved_to_its_id_once_then_from_the_cache() -> None:
    directory = FakeUserDirectory({1: "ann"})
    names = resolver(directory)
    assert [await names.user_id("ann") for _ in range(3)] == [1, 1, 1]
    assert directory.name_requests == ["ann"]


async def test_names_learned_from_id_lookups_resolve_without_asking() -> None:
    directory = FakeUserDirectory({1: "ann", 2: "bob"})
    names = resolver(directory)
    await names.usernames([1, 2])
    assert await names.user_id("bob") == 2
    assert directory.name_requests == []


async def test_unknown_usernames_are_asked_every_time() -> None:
    directory = FakeUserDirectory({1: "ann"})
    names = resolver(directory)
    assert await names.user_id("zed") is None
    directory.names[2] = "zed"  # the user registers
    assert await names.user_id("zed") == 2
    assert directory.name_requests == ["zed", "zed"]


async def test_a_username_lookup_fails_when_user_service_is_down_and_nothing_is_cached() -> None:
    directory = FakeUserDirectory({1: "ann"})
    directory.down = True
    with pytest.raises(DependencyUnavailable):
        await resolver(directory).user_id("ann")


async def test_name_lookups_are_not_cached_when_caching_is_off() -> None:
    directory = FakeUserDirectory({1: "ann"})
    names = resolver(directory, ttl=0)
    await names.user_id("ann")
    await names.user_id("ann")
    assert directory.name_requests == ["ann", "ann"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_names_cached_together_expire_spread_over_the_last_fifth_of_the_ttl() -> None:
    directory = FakeUserDirectory({i: f"u{i}" for i in range(1, 201)})
    clock = Clock()
    names = UsernameResolver(directory, cache_ttl_seconds=100, cache_size=1000, clock=clock)
    await names.usernames(range(1, 201))  # a cold start: every name cached at once

    clock.now = 79.9
    await names.usernames(range(1, 201))
    assert len(directory.requests) == 1, "nothing expires before 80% of the TTL"
    clock.now = 90.0
    await names.usernames(range(1, 201))
    halfway = len(directory.requests[-1])
    assert 70 <= halfway <= 130, "about half of them by 90%, not all at once"
    clock.now = 100.0
    await names.usernames(range(1, 201))
    assert len(directory.requests[-1]) == 200 - halfway, "the rest by 100%"


async def test_a_users_name_and_id_expire_together() -> None:
    directory = FakeUserDirectory({7: "ann"})
    clock = Clock()
    names = UsernameResolver(directory, cache_ttl_seconds=100, cache_size=10, clock=clock)
    await names.usernames([7])
    lifetime = 100 * lifetime_share(7)
    clock.now = lifetime - 0.01
    assert await names.user_id("ann") == 7
    assert directory.name_requests == [], "the name is still cached"
    clock.now = lifetime + 0.01
    assert await names.user_id("ann") == 7
    assert directory.name_requests == ["ann"], "and expired with the id"
