"""The v1 contract end to end against `post-service serve` in a hardened container of the image:
health, reflection, create, get, list, edit, delete, usernames from the stand-in User-service,
validation errors. (The rules themselves are proven in tests/unit and tests/e2e; this proves
the image serves them.)"""

from __future__ import annotations

import grpc
import pytest

from devenv.user_service import StandInUserService
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from tests.support.health import SERVING
from tests.support.reflection import V1_METHODS, reflected

from .containers import ServiceContainer

pytestmark = pytest.mark.e2e


def create(posts: PostStub, author: int, title: str = "A title") -> pb.PostOutResponse:
    request = pb.PostCreateRequest(auth_id=author, title=title, body="A body")
    created: pb.PostOutResponse = posts.CreatePost(request, timeout=5)
    return created


def code_of(call: object, request: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as raised:
        call(request, timeout=5)  # type: ignore[operator]
    return raised.value.code(), raised.value.details()


def test_health_is_serving_overall_for_post_post_and_for_liveness(
    service: ServiceContainer,
) -> None:
    assert [service.health(name) for name in ("", "post.Post", "liveness")] == [SERVING] * 3


def test_reflection_describes_the_v1_post_service(service: ServiceContainer) -> None:
    services, methods = reflected(service.addr, "post.Post")
    assert {"post.Post", "grpc.health.v1.Health"} <= services
    assert methods == V1_METHODS


def test_a_created_post_is_readable_with_its_authors_name(posts: PostStub) -> None:
    created = create(posts, author=7, title="Hello")
    assert (created.title, created.username) == ("Hello", "user-7")
    fetched = posts.GetByIdPost(pb.PostGetByIdRequest(post_id=created.post_id), timeout=5)
    assert fetched == created


@pytest.mark.usefixtures("empty_posts_table")
def test_listing_is_newest_first_and_names_every_author_with_one_user_service_call(
    posts: PostStub, user_service: StandInUserService
) -> None:
    ids = [create(posts, author=1 + n % 3, title=f"p{n}").post_id for n in range(6)]
    user_service.calls.by_ids.clear()
    page = posts.GetGroupPost(pb.PostGetGroupRequest(limit=4), timeout=5).posts
    assert [p.post_id for p in page] == sorted(ids, reverse=True)[:4]
    assert {p.username for p in page} == {"user-1", "user-2", "user-3"}
    assert len(user_service.calls.by_ids) == 1
    rest = posts.GetGroupPost(pb.PostGetGroupRequest(limit=4, last_id=page[-1].post_id), timeout=5)
    assert [p.post_id for p in rest.posts] == sorted(ids, reverse=True)[4:]


@pytest.mark.usefixtures("empty_posts_table")
def test_a_users_posts_are_listed_by_username(posts: PostStub) -> None:
    mine = [create(posts, author=5).post_id for _ in range(2)]
    create(posts, author=6)
    listed = posts.GetByIdUserPost(pb.PostGetByIdUserRequest(username="user-5"), timeout=5).posts
    assert [p.post_id for p in listed] == sorted(mine, reverse=True)


def test_the_author_edits_a_post_and_readers_see_the_edit(posts: PostStub) -> None:
    created = create(posts, author=3, title="Old")
    edit = pb.PostPutRequest(auth_id=3, post_id=created.post_id, title="New", body="Edited")
    edited = posts.PutPost(edit, timeout=5)
    assert (edited.post_id, edited.title, edited.body, edited.username) == (
        created.post_id, "New", "Edited", "user-3",
    )  # fmt: skip
    fetched = posts.GetByIdPost(pb.PostGetByIdRequest(post_id=created.post_id), timeout=5)
    assert (fetched.title, fetched.body) == ("New", "Edited")


def test_only_the_author_edits_or_deletes(posts: PostStub) -> None:
    created = create(posts, author=3)
    put = pb.PostPutRequest(auth_id=4, post_id=created.post_id, title="Stolen", body="x")
    delete = pb.PostDeleteRequest(auth_id=4, post_id=created.post_id)
    assert code_of(posts.PutPost, put)[0] == grpc.StatusCode.PERMISSION_DENIED
    assert code_of(posts.DeletePost, delete)[0] == grpc.StatusCode.PERMISSION_DENIED


def test_the_author_deletes_and_the_post_is_gone(posts: PostStub) -> None:
    created = create(posts, author=5)
    posts.DeletePost(pb.PostDeleteRequest(auth_id=5, post_id=created.post_id), timeout=5)
    get = pb.PostGetByIdRequest(post_id=created.post_id)
    assert code_of(posts.GetByIdPost, get)[0] == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.PostCreateRequest(auth_id=1, title=" ", body="b"), "title"),
        (pb.PostCreateRequest(auth_id=1, title="t", body="b" * 20_001), "body"),
        (pb.PostCreateRequest(auth_id=0, title="t", body="b"), "auth_id"),
        (pb.PostGetGroupRequest(limit=-1), "limit"),
    ],
    ids=["blank-title", "long-body", "zero-author", "negative-limit"],
)
def test_invalid_requests_are_invalid_arguments_naming_the_field(
    posts: PostStub, request_: object, field: str
) -> None:
    call = posts.GetGroupPost if isinstance(request_, pb.PostGetGroupRequest) else posts.CreatePost
    code, details = code_of(call, request_)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith(f"{field}:")
