"""User-service down, then slower than its deadline, under concurrent read load.

Holds when: every read answers OK within the User-service deadline (0.3 s in the session
service) plus a small margin, with empty usernames; names lookups with no fallback (a
username filter) fail fast with UNAVAILABLE; and names come back once User-service does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from devenv.user_service import StandInUserService
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from tests.reliability import support
from tests.reliability.support import UNAVAILABLE, Outcome, timed_call

pytestmark = pytest.mark.e2e

USER_SERVICE_DEADLINE = 0.3  # USER_SERVICE_TIMEOUT_SECONDS of the session `service`
MARGIN = 0.7  # two cores shared by the service, the stand-in and eight client threads
READERS = 8
PHASE_SECONDS = 1.5
AUTHOR = 21


def _read_load(stub: PostStub, post_id: int, seconds: float) -> list[Outcome]:
    calls: list[tuple[str, Callable[..., Any], Any]] = [
        ("GetByIdPost", stub.GetByIdPost, pb.PostGetByIdRequest(post_id=post_id)),
        ("GetGroupPost", stub.GetGroupPost, pb.PostGetGroupRequest(limit=5)),
        ("GetByIdUserPost", stub.GetByIdUserPost, pb.PostGetByIdUserRequest(auth_id=AUTHOR)),
    ]
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    until = time.monotonic() + seconds

    def reader(offset: int) -> None:
        n = offset
        while time.monotonic() < until:
            rpc, method, request = calls[n % len(calls)]
            outcome = timed_call(rpc, method, request, 5)
            with lock:
                outcomes.append(outcome)
            n += 1

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(READERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


def _usernames(outcome: Outcome) -> list[str]:
    response = outcome.response
    if isinstance(response, pb.PostOutResponse):
        return [response.username]
    return [post.username for post in response.posts]


def _check_degraded(phase: str, outcomes: list[Outcome]) -> None:
    codes = support.code_counts(outcomes)
    slowest = max((o.elapsed for o in outcomes), default=0.0)
    support.record_figure(
        f"user_service_{phase}",
        {
            "reads": len(outcomes),
            "codes": codes,
            "p50_s": round(support.percentile((o.elapsed for o in outcomes), 0.5), 3),
            "p99_s": round(support.percentile((o.elapsed for o in outcomes), 0.99), 3),
            "max_s": round(slowest, 3),
        },
    )
    assert outcomes
    assert set(codes) == {"OK"}, codes
    own = [o for o in outcomes if o.rpc != "GetGroupPost"]  # the group page has other authors
    assert all(name == "" for o in own for name in _usernames(o))
    assert slowest < USER_SERVICE_DEADLINE + MARGIN, f"{phase}: slowest read {slowest:.2f} s"


def _wait_for_names(stub: PostStub, post_id: int, timeout: float = 15) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        reply = stub.GetByIdPost(pb.PostGetByIdRequest(post_id=post_id), timeout=5)
        if reply.username:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError("usernames did not come back after User-service recovered")


def test_reads_stay_within_deadline_with_empty_names_while_user_service_is_down_or_slow(
    posts: PostStub, user_service: StandInUserService
) -> None:
    post_id = posts.CreatePost(
        pb.PostCreateRequest(auth_id=AUTHOR, title="names", body="b"), timeout=5
    ).post_id

    user_service.stop()
    _check_degraded("down", _read_load(posts, post_id, PHASE_SECONDS))
    by_name = timed_call(
        "GetByIdUserPost", posts.GetByIdUserPost, pb.PostGetByIdUserRequest(username="user-21"), 5
    )
    assert by_name.code == UNAVAILABLE, by_name
    assert by_name.elapsed < USER_SERVICE_DEADLINE + MARGIN
    user_service.start()
    back_from_down = _wait_for_names(posts, post_id)

    user_service.delay_seconds = 1.0  # answers, but long after the 0.3 s deadline
    _check_degraded("slow", _read_load(posts, post_id, PHASE_SECONDS))
    by_name_slow = timed_call(
        "GetByIdUserPost", posts.GetByIdUserPost, pb.PostGetByIdUserRequest(username="user-21"), 5
    )
    assert by_name_slow.code == UNAVAILABLE, by_name_slow
    user_service.delay_seconds = 0.0
    back_from_slow = _wait_for_names(posts, post_id)

    healthy = _read_load(posts, post_id, 1.0)
    assert {o.code for o in healthy} == {grpc.StatusCode.OK}
    assert all(
        name == f"user-{AUTHOR}"
        for o in healthy
        if o.rpc != "GetGroupPost"
        for name in _usernames(o)
    )
    support.record_figure(
        "user_service_recovery_s",
        {"after_restart": round(back_from_down, 2), "after_slowness": round(back_from_slow, 2)},
    )
