"""The v1 contract through the real process: every RPC, status and paging edge."""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devenv.post_service_process import PostServiceProcess
from devenv.postgres import LocalPostgres
from devenv.user_service import StandInUserService
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub

pytestmark = pytest.mark.e2e

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def create(
    posts: PostStub, author: int = 1, title: str = "A title", body: str = "A body"
) -> pb.PostOutResponse:
    request = pb.PostCreateRequest(auth_id=author, title=title, body=body)
    created: pb.PostOutResponse = posts.CreatePost(request, timeout=5)
    return created


def status_of(call: object, *args: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as raised:
        call(*args, timeout=5)  # type: ignore[operator]
    return raised.value.code(), raised.value.details()


def test_created_post_is_returned_and_readable_with_its_author_name(posts: PostStub) -> None:
    created = create(posts, author=7, title="Hello", body="First post")
    assert created.post_id > 0
    assert (created.title, created.body, created.username) == ("Hello", "First post", "user-7")
    fetched = posts.GetByIdPost(pb.PostGetByIdRequest(post_id=created.post_id), timeout=5)
    assert fetched == created


def test_unicode_round_trips_unchanged(posts: PostStub) -> None:
    title = "Ünïcödé 🚀 مرحبا"
    body = "e\u0301 combining, 中文, emoji 👩‍💻, zero-width\u200b joiner"
    created = create(posts, title=title, body=body)
    fetched = posts.GetByIdPost(pb.PostGetByIdRequest(post_id=created.post_id), timeout=5)
    assert (fetched.title, fetched.body) == (title, body)


# The validation rules themselves are proven in tests/unit/test_post_rules.py; these cases
# show that they reach the caller as INVALID_ARGUMENT naming the field.
@pytest.mark.parametrize(
    ("title", "body", "field"),
    [("   \t\n", "body", "title"), ("title", "b" * 20_001, "body")],
)
def test_invalid_content_is_refused_naming_the_field(
    posts: PostStub, title: str, body: str, field: str
) -> None:
    code, details = status_of(
        posts.CreatePost, pb.PostCreateRequest(auth_id=1, title=title, body=body)
    )
    assert code == INVALID
    assert details.startswith(f"{field}:")


def test_longest_allowed_title_and_body_are_accepted(posts: PostStub) -> None:
    created = create(posts, title="t" * 255, body="b" * 20_000)
    assert (len(created.title), len(created.body)) == (255, 20_000)


@pytest.mark.parametrize("bad_id", [0])  # the rule: tests/unit/test_post_rules.py
def test_non_positive_ids_are_invalid_arguments(posts: PostStub, bad_id: int) -> None:
    calls = [
        (posts.CreatePost, pb.PostCreateRequest(auth_id=bad_id, title="t", body="b"), "auth_id"),
        (posts.GetByIdPost, pb.PostGetByIdRequest(post_id=bad_id), "post_id"),
        (
            posts.PutPost,
            pb.PostPutRequest(auth_id=1, post_id=bad_id, title="t", body="b"),
            "post_id",
        ),
        (
            posts.PutPost,
            pb.PostPutRequest(auth_id=bad_id, post_id=1, title="t", body="b"),
            "auth_id",
        ),
        (posts.DeletePost, pb.PostDeleteRequest(auth_id=1, post_id=bad_id), "post_id"),
        (posts.DeletePost, pb.PostDeleteRequest(auth_id=bad_id, post_id=1), "auth_id"),
        (posts.GetByIdUserPost, pb.PostGetByIdUserRequest(auth_id=bad_id), "auth_id"),
    ]
    for call, request, field in calls:
        code, details = status_of(call, request)
        assert (code, details.split(":")[0]) == (INVALID, field), request


def test_missing_post_is_not_found(posts: PostStub) -> None:
    code, _ = status_of(posts.GetByIdPost, pb.PostGetByIdRequest(post_id=2**31 - 1))
    assert code == grpc.StatusCode.NOT_FOUND


def test_author_edits_and_the_version_advances(posts: PostStub, postgres: LocalPostgres) -> None:
    created = create(posts, author=3)

    def stored_version() -> int:  # the v1 API does not expose it
        return int(postgres.psql(f"SELECT version FROM posts WHERE id = {created.post_id}"))

    assert stored_version() == 1
    edited = posts.PutPost(
        pb.PostPutRequest(auth_id=3, post_id=created.post_id, title="New", body="Text"), timeout=5
    )
    assert (edited.post_id, edited.title, edited.body, edited.username) == (
        created.post_id, "New", "Text", "user-3",
    )  # fmt: skip
    assert stored_version() == 2
    fetched = posts.GetByIdPost(pb.PostGetByIdRequest(post_id=created.post_id), timeout=5)
    assert fetched.title == "New"
    refused = pb.PostPutRequest(auth_id=4, post_id=created.post_id, title="Other", body="x")
    assert status_of(posts.PutPost, refused)[0] == grpc.StatusCode.PERMISSION_DENIED
    assert stored_version() == 2  # a refused edit changes nothing
    posts.PutPost(
        pb.PostPutRequest(auth_id=3, post_id=created.post_id, title="Again", body="Text"), timeout=5
    )
    assert stored_version() == 3


def test_only_the_author_may_edit_or_delete(posts: PostStub) -> None:
    created = create(posts, author=3, title="Mine")
    put = pb.PostPutRequest(auth_id=4, post_id=created.post_id, title="Stolen", body="x")
    assert status_of(posts.PutPost, put)[0] == grpc.StatusCode.PERMISSION_DENIED
    delete = pb.PostDeleteRequest(auth_id=4, post_id=created.post_id)
    assert status_of(posts.DeletePost, delete)[0] == grpc.StatusCode.PERMISSION_DENIED
    fetched = posts.GetByIdPost(pb.PostGetByIdRequest(post_id=created.post_id), timeout=5)
    assert fetched.title == "Mine"


def test_editing_or_deleting_a_missing_post_is_not_found(posts: PostStub) -> None:
    missing = 2**31 - 2
    put = pb.PostPutRequest(auth_id=1, post_id=missing, title="t", body="b")
    assert status_of(posts.PutPost, put)[0] == grpc.StatusCode.NOT_FOUND
    delete = pb.PostDeleteRequest(auth_id=1, post_id=missing)
    assert status_of(posts.DeletePost, delete)[0] == grpc.StatusCode.NOT_FOUND


def test_author_deletes_and_the_post_is_gone(posts: PostStub) -> None:
    created = create(posts, author=5)
    assert (
        posts.DeletePost(pb.PostDeleteRequest(auth_id=5, post_id=created.post_id), timeout=5)
        == pb.Empty()
    )
    get = pb.PostGetByIdRequest(post_id=created.post_id)
    assert status_of(posts.GetByIdPost, get)[0] == grpc.StatusCode.NOT_FOUND
    again = pb.PostDeleteRequest(auth_id=5, post_id=created.post_id)
    assert status_of(posts.DeletePost, again)[0] == grpc.StatusCode.NOT_FOUND


def test_concurrent_edits_of_one_post_all_succeed_and_none_is_lost(
    posts: PostStub, postgres: LocalPostgres
) -> None:
    created = create(posts, author=9)

    def edit(n: int) -> pb.PostOutResponse:
        request = pb.PostPutRequest(auth_id=9, post_id=created.post_id, title=f"v{n}", body=f"b{n}")
        edited: pb.PostOutResponse = posts.PutPost(request, timeout=10)
        return edited

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(edit, range(30)))
    assert all(result.post_id == created.post_id for result in results)
    version = postgres.psql(f"SELECT version FROM posts WHERE id = {created.post_id}")
    assert version == "31"


def test_oversized_request_is_refused_as_resource_exhausted(posts: PostStub) -> None:
    huge = pb.PostCreateRequest(auth_id=1, title="t", body="x" * (2 * 1024 * 1024))
    assert status_of(posts.CreatePost, huge)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED


# --- listing --------------------------------------------------------------------------------


def list_page(posts: PostStub, limit: int = 0, last_id: int = 0) -> list[pb.PostOutResponse]:
    return list(
        posts.GetGroupPost(pb.PostGetGroupRequest(limit=limit, last_id=last_id), timeout=5).posts
    )


def seed(posts: PostStub, count: int, authors: int = 5) -> list[int]:
    return [create(posts, author=1 + n % authors, title=f"p{n}").post_id for n in range(count)]


@pytest.mark.usefixtures("empty_posts_table")
def test_listing_an_empty_table_is_an_empty_page(posts: PostStub) -> None:
    assert list_page(posts) == []
    assert list_page(posts, limit=5, last_id=10) == []


@pytest.mark.usefixtures("empty_posts_table")
def test_listing_is_newest_first_with_default_max_and_capped_sizes(posts: PostStub) -> None:
    ids = seed(posts, 130)
    newest_first = sorted(ids, reverse=True)
    assert [p.post_id for p in list_page(posts)] == newest_first[:20]
    assert [p.post_id for p in list_page(posts, limit=1)] == newest_first[:1]
    assert len(list_page(posts, limit=100)) == 100
    assert len(list_page(posts, limit=150)) == 100
    assert len(list_page(posts, limit=2**31 - 1)) == 100


@pytest.mark.usefixtures("empty_posts_table")
def test_keyset_pages_cover_every_post_once_and_end_with_an_empty_page(posts: PostStub) -> None:
    ids = seed(posts, 45)
    seen: list[int] = []
    last_id = 0
    while page := list_page(posts, limit=10, last_id=last_id):
        seen += [p.post_id for p in page]
        last_id = page[-1].post_id
    assert seen == sorted(ids, reverse=True)
    assert list_page(posts, limit=10, last_id=min(ids)) == []


@pytest.mark.usefixtures("empty_posts_table")
def test_a_page_of_many_authors_asks_user_service_once(
    posts: PostStub, user_service: StandInUserService
) -> None:
    seed(posts, 20, authors=7)
    user_service.calls.by_ids.clear()
    page = list_page(posts, limit=20)
    assert len(user_service.calls.by_ids) == 1
    assert sorted(user_service.calls.by_ids[0]) == list(range(1, 8))
    assert {p.username for p in page} == {f"user-{n}" for n in range(1, 8)}


@pytest.mark.usefixtures("empty_posts_table")
def test_user_posts_by_username_or_by_caller(posts: PostStub) -> None:
    seed(posts, 12, authors=3)  # authors 1, 2, 3
    by_name = posts.GetByIdUserPost(pb.PostGetByIdUserRequest(username="user-2"), timeout=5).posts
    assert len(by_name) == 4
    assert {p.username for p in by_name} == {"user-2"}
    assert [p.post_id for p in by_name] == sorted((p.post_id for p in by_name), reverse=True)
    by_caller = posts.GetByIdUserPost(pb.PostGetByIdUserRequest(auth_id=3), timeout=5).posts
    assert {p.username for p in by_caller} == {"user-3"}
    assert len(by_caller) == 4


@pytest.mark.usefixtures("empty_posts_table")
def test_user_posts_are_capped_at_the_maximum_page(posts: PostStub) -> None:
    seed(posts, 105, authors=1)
    listed = posts.GetByIdUserPost(pb.PostGetByIdUserRequest(username="user-1"), timeout=5).posts
    assert len(listed) == 100


def test_unknown_username_is_not_found(posts: PostStub) -> None:
    request = pb.PostGetByIdUserRequest(username="nobody-here")
    assert status_of(posts.GetByIdUserPost, request)[0] == grpc.StatusCode.NOT_FOUND


# --- User-service trouble -------------------------------------------------------------------
# What happened, not how long it took: each answer is degraded and counted as such, and each
# User-service call ended by itself (refused, or cut off at the service's own deadline) rather
# than holding the response until the client's deadline.


def counters(service: PostServiceProcess) -> Counter[tuple[str, ...]]:
    """Every counter sample of the service's /metrics, keyed by name and label values."""
    url = f"http://127.0.0.1:{service.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return Counter(
        {
            (sample.name, *(f"{k}={v}" for k, v in sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            if family.type == "counter"
            for sample in family.samples
            if sample.name.endswith("_total")
        }
    )


def degraded_by_method(delta: Counter[tuple[str, ...]]) -> dict[str, float]:
    return {
        key[1].removeprefix("grpc_method="): value
        for key, value in delta.items()
        if key[0] == "post_service_degraded_responses_total" and value
    }


def user_service_calls_by_code(delta: Counter[tuple[str, ...]]) -> dict[tuple[str, str], float]:
    """User-service calls that finished in the interval, by method and (normalised) status."""
    calls: Counter[tuple[str, str]] = Counter()
    for key, value in delta.items():
        labels = dict(label.split("=", 1) for label in key[1:])
        if key[0] == "grpc_client_handled_total" and labels["grpc_service"] == "user_post.UserPost":
            calls[labels["grpc_method"], labels["grpc_code"].replace("_", "").lower()] += value
    return {key: value for key, value in calls.items() if value}


def test_reads_and_writes_succeed_with_empty_usernames_when_user_service_is_down(
    posts: PostStub, user_service: StandInUserService, service: PostServiceProcess
) -> None:
    created = create(posts, author=11)
    user_service.stop()
    user_service.calls.by_ids.clear()
    before = counters(service)
    fetched = posts.GetByIdPost(pb.PostGetByIdRequest(post_id=created.post_id), timeout=5)
    listed = list_page(posts, limit=5)
    new = create(posts, author=11)
    delta = counters(service) - before
    assert (fetched.post_id, fetched.username) == (created.post_id, "")
    assert listed
    assert all(p.username == "" for p in listed)
    assert new.post_id > created.post_id
    assert new.username == ""
    assert degraded_by_method(delta) == {"GetByIdPost": 1, "GetGroupPost": 1, "CreatePost": 1}
    calls = user_service_calls_by_code(delta)
    assert sum(calls.values()) == 3  # one lookup per answer, none left pending
    assert {method for method, _ in calls} == {"GetByIDs"}
    assert {code for _, code in calls} <= {"unavailable", "deadlineexceeded"}
    assert user_service.calls.by_ids == []  # nothing reached it
    user_service.start()
    wait_until_usernames_resolve(posts, created.post_id)


def test_a_slow_user_service_is_cut_off_at_the_deadline(
    posts: PostStub, user_service: StandInUserService, service: PostServiceProcess
) -> None:
    created = create(posts, author=12)
    wait_until_usernames_resolve(posts, created.post_id)  # reachable: only slowness is tested
    # Slower than the service's deadline (0.3 s), well within this call's own (5 s): an answer
    # with a name would mean the service waited for User-service.
    user_service.delay_seconds = 2.0
    before = counters(service)
    fetched = posts.GetByIdPost(pb.PostGetByIdRequest(post_id=created.post_id), timeout=5)
    delta = counters(service) - before
    assert fetched.username == ""
    assert user_service_calls_by_code(delta) == {("GetByIDs", "deadlineexceeded"): 1}
    assert degraded_by_method(delta) == {"GetByIdPost": 1}
    user_service.delay_seconds = 0
    wait_until_usernames_resolve(posts, created.post_id)


def wait_until_usernames_resolve(posts: PostStub, post_id: int) -> None:
    """Recovery: once User-service answers again, names come back without a restart."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if posts.GetByIdPost(pb.PostGetByIdRequest(post_id=post_id), timeout=5).username:
            return
        time.sleep(0.2)
    raise AssertionError("usernames did not come back after User-service recovered")
