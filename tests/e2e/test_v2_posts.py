"""post.v2 through the real process: reads, writes, etags, request ids, revisions, errors,
and one set of posts shared with v1."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.protobuf import field_mask_pb2

from devenv.postgres import LocalPostgres
from post_service._generated.post import post_pb2 as v1
from post_service._generated.post.post_pb2_grpc import PostStub
from post_service._generated.post.v2 import post_pb2 as pb
from post_service._generated.post.v2.post_pb2_grpc import PostServiceStub
from tests.support.rich_errors import rich_error

pytestmark = pytest.mark.e2e


@pytest.fixture
def posts(channel: grpc.Channel) -> PostServiceStub:
    return PostServiceStub(channel)


@pytest.fixture
def posts_v1(channel: grpc.Channel) -> PostStub:
    return PostStub(channel)


def create(
    posts: PostServiceStub, author: int = 1, title: str = "A title", body: str = "A body", **kw: str
) -> pb.Post:
    request = pb.CreatePostRequest(auth_id=author, title=title, body=body, **kw)
    created: pb.Post = posts.CreatePost(request, timeout=10)
    return created


def update(posts: PostServiceStub, post: pb.Post, *paths: str, **fields: object) -> pb.Post:
    request = pb.UpdatePostRequest(
        auth_id=post.author.id,
        id=post.id,
        update_mask=field_mask_pb2.FieldMask(paths=list(paths)),
        **fields,  # type: ignore[arg-type]
    )
    updated: pb.Post = posts.UpdatePost(request, timeout=10)
    return updated


def outbox_events(postgres: LocalPostgres, post_id: int) -> list[str]:
    rows = postgres.psql(f"SELECT event_type FROM outbox WHERE post_id = {post_id} ORDER BY id")
    return rows.split()


def test_a_created_post_has_its_author_times_revision_and_etag(posts: PostServiceStub) -> None:
    created = create(posts, author=7, title="Hello", body="First post")
    assert created.id > 0
    assert (created.author.id, created.author.username) == (7, "user-7")
    assert (created.title, created.body, created.revision) == ("Hello", "First post", 0)
    assert created.create_time.seconds > 1_700_000_000
    assert created.update_time == created.create_time
    assert created.etag
    assert posts.GetPost(pb.GetPostRequest(id=created.id), timeout=10) == created


def test_v1_and_v2_see_the_same_posts(posts: PostServiceStub, posts_v1: PostStub) -> None:
    from_v1 = posts_v1.CreatePost(v1.PostCreateRequest(auth_id=3, title="v1", body="b"), timeout=10)
    seen = posts.GetPost(pb.GetPostRequest(id=from_v1.post_id), timeout=10)
    assert (seen.title, seen.author.id, seen.author.username) == ("v1", 3, "user-3")

    from_v2 = create(posts, author=3, title="v2")
    assert posts_v1.GetByIdPost(v1.PostGetByIdRequest(post_id=from_v2.id), timeout=10) == (
        v1.PostOutResponse(post_id=from_v2.id, title="v2", body="A body", username="user-3")
    )
    newest = posts_v1.GetGroupPost(v1.PostGetGroupRequest(limit=100), timeout=10)
    assert from_v2.id in [p.post_id for p in newest.posts]

    posts_v1.PutPost(
        v1.PostPutRequest(auth_id=3, post_id=from_v2.id, title="edited in v1", body="b"),
        timeout=10,
    )
    edited = posts.GetPost(pb.GetPostRequest(id=from_v2.id), timeout=10)
    assert (edited.title, edited.revision) == ("edited in v1", 1)
    assert edited.etag != from_v2.etag
    assert edited.update_time.ToMicroseconds() > edited.create_time.ToMicroseconds()
    history = posts.ListPostRevisions(pb.ListPostRevisionsRequest(post_id=from_v2.id), timeout=10)
    assert [(r.revision, r.title) for r in history.revisions] == [(0, "v2")]

    posts.DeletePost(pb.DeletePostRequest(auth_id=3, id=from_v2.id), timeout=10)
    missing = rich_error(posts_v1.GetByIdPost, v1.PostGetByIdRequest(post_id=from_v2.id))
    assert (missing.code, missing.has_details) == (grpc.StatusCode.NOT_FOUND, False)


def test_batch_get_answers_in_request_order_repeats_included(posts: PostServiceStub) -> None:
    a, b, c = (create(posts, title=title) for title in "abc")
    ids = [c.id, a.id, b.id, c.id]
    answer = posts.BatchGetPosts(pb.BatchGetPostsRequest(ids=ids), timeout=10)
    assert [p.id for p in answer.posts] == ids
    assert [p.title for p in answer.posts] == ["c", "a", "b", "c"]
    assert answer.posts[1] == a


def test_batch_get_with_missing_ids_is_not_found_and_names_each(posts: PostServiceStub) -> None:
    present = create(posts)
    missing = [2**31 - 2, 2**31 - 3]
    error = rich_error(
        posts.BatchGetPosts, pb.BatchGetPostsRequest(ids=[missing[0], present.id, missing[1]])
    )
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert error.reason == "POSTS_NOT_FOUND"
    assert error.resources == [("post.v2.Post", str(post_id)) for post_id in missing]
    assert error.metadata["post_ids"] == ",".join(map(str, missing))


def test_batch_get_takes_at_most_a_hundred_ids(posts: PostServiceStub) -> None:
    post = create(posts)
    assert len(posts.BatchGetPosts(pb.BatchGetPostsRequest(ids=[post.id] * 100)).posts) == 100
    error = rich_error(posts.BatchGetPosts, pb.BatchGetPostsRequest(ids=[post.id] * 101))
    assert (error.code, error.field_violations[0][0]) == (grpc.StatusCode.INVALID_ARGUMENT, "ids")


def test_validation_errors_carry_field_violations_while_v1_stays_plain(
    posts: PostServiceStub, posts_v1: PostStub
) -> None:
    error = rich_error(posts.CreatePost, pb.CreatePostRequest(auth_id=1, title=" ", body="b"))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.field_violations == [("title", "must not be blank")]
    assert (error.reason, error.metadata) == ("INVALID_ARGUMENT", {"field": "title"})
    assert error.message == "title: must not be blank"

    plain = rich_error(posts_v1.CreatePost, v1.PostCreateRequest(auth_id=1, title=" ", body="b"))
    assert (plain.code, plain.message) == (error.code, error.message)
    assert not plain.has_details


def test_ten_concurrent_creates_with_one_request_id_give_one_post_and_one_event(
    posts: PostServiceStub, postgres: LocalPostgres
) -> None:
    request_id = str(uuid.uuid4())
    with ThreadPoolExecutor(10) as pool:
        answers = list(
            pool.map(
                lambda _: create(posts, author=11, title="Once", request_id=request_id), range(10)
            )
        )
    assert len({answer.id for answer in answers}) == 1
    assert all(answer == answers[0] for answer in answers)
    stored = postgres.psql("SELECT count(*) FROM posts WHERE author_id = 11 AND title = 'Once'")
    assert stored == "1"
    assert outbox_events(postgres, answers[0].id) == ["post.created"]


def test_a_request_id_reused_for_other_content_is_refused(
    posts: PostServiceStub, postgres: LocalPostgres
) -> None:
    request_id = str(uuid.uuid4())
    first = create(posts, author=12, title="Mine", request_id=request_id)
    for author, title in ((12, "Other title"), (13, "Mine")):
        error = rich_error(
            posts.CreatePost,
            pb.CreatePostRequest(auth_id=author, title=title, body="A body", request_id=request_id),
        )
        assert (error.code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")
    assert create(posts, author=12, title="Mine", request_id=request_id) == first
    assert outbox_events(postgres, first.id) == ["post.created"]

    bad = rich_error(
        posts.CreatePost, pb.CreatePostRequest(auth_id=1, title="t", body="b", request_id="42")
    )
    assert bad.field_violations == [("request_id", "must be a UUID")]


def test_a_stale_etag_changes_nothing_and_publishes_nothing(
    posts: PostServiceStub, postgres: LocalPostgres
) -> None:
    original = create(posts, author=14, title="Original")
    current = update(posts, original, "title", title="Moderated", etag=original.etag)
    assert (current.title, current.revision) == ("Moderated", 1)

    stale = rich_error(
        posts.UpdatePost,
        pb.UpdatePostRequest(
            auth_id=14,
            id=original.id,
            title="Overwrite",
            update_mask=field_mask_pb2.FieldMask(paths=["title"]),
            etag=original.etag,
        ),
    )
    assert (stale.code, stale.reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    assert stale.metadata == {"post_id": str(original.id), "current_etag": current.etag}
    deleting = rich_error(
        posts.DeletePost, pb.DeletePostRequest(auth_id=14, id=original.id, etag=original.etag)
    )
    assert (deleting.code, deleting.reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")

    assert posts.GetPost(pb.GetPostRequest(id=original.id), timeout=10) == current
    assert outbox_events(postgres, original.id) == ["post.created", "post.updated"]

    posts.DeletePost(pb.DeletePostRequest(auth_id=14, id=original.id, etag=current.etag))
    assert outbox_events(postgres, original.id)[-1] == "post.deleted"


def test_an_update_mask_changes_only_the_fields_it_names(posts: PostServiceStub) -> None:
    post = create(posts, author=15, title="Title", body="Body")
    titled = update(posts, post, "title", title="New title", body="ignored")
    assert (titled.title, titled.body) == ("New title", "Body")
    bodied = update(posts, titled, body="New body")  # no mask: the non-empty fields
    assert (bodied.title, bodied.body, bodied.revision) == ("New title", "New body", 2)
    error = rich_error(
        posts.UpdatePost,
        pb.UpdatePostRequest(
            auth_id=15, id=post.id, update_mask=field_mask_pb2.FieldMask(paths=["author"])
        ),
    )
    assert [f for f, _ in error.field_violations] == ["update_mask"]
    blank = rich_error(
        posts.UpdatePost,
        pb.UpdatePostRequest(
            auth_id=15, id=post.id, update_mask=field_mask_pb2.FieldMask(paths=["body"])
        ),
    )
    assert blank.field_violations == [("body", "must not be blank")]


def test_only_the_author_may_change_a_post(posts: PostServiceStub) -> None:
    post = create(posts, author=16)
    for call, request in (
        (posts.UpdatePost, pb.UpdatePostRequest(auth_id=17, id=post.id, title="Mine now")),
        (posts.DeletePost, pb.DeletePostRequest(auth_id=17, id=post.id)),
    ):
        error = rich_error(call, request)
        assert (error.code, error.reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_POST_AUTHOR")
        assert error.metadata == {"post_id": str(post.id)}
    gone = rich_error(posts.GetPost, pb.GetPostRequest(id=2**31 - 1))
    assert (gone.code, gone.reason) == (grpc.StatusCode.NOT_FOUND, "POST_NOT_FOUND")
    assert gone.resources == [("post.v2.Post", str(2**31 - 1))]


def test_a_deleted_user_can_neither_create_nor_edit_through_v2(
    posts: PostServiceStub, postgres: LocalPostgres
) -> None:
    post = create(posts, author=918)
    postgres.psql("INSERT INTO deleted_users (user_id) VALUES (918) ON CONFLICT DO NOTHING")
    for call, request in (
        (posts.CreatePost, pb.CreatePostRequest(auth_id=918, title="t", body="b")),
        (posts.UpdatePost, pb.UpdatePostRequest(auth_id=918, id=post.id, title="t")),
    ):
        error = rich_error(call, request)
        assert (error.code, error.reason) == (grpc.StatusCode.PERMISSION_DENIED, "USER_DELETED")


def test_revisions_after_three_edits_newest_first_and_paged(posts: PostServiceStub) -> None:
    post = create(posts, author=19, title="v0", body="body 0")
    for n in (1, 2, 3):
        post = update(posts, post, "title", "body", title=f"v{n}", body=f"body {n}")
    assert post.revision == 3
    first = posts.ListPostRevisions(
        pb.ListPostRevisionsRequest(post_id=post.id, page_size=2), timeout=10
    )
    assert [(r.revision, r.title, r.body) for r in first.revisions] == [
        (2, "v2", "body 2"),
        (1, "v1", "body 1"),
    ]
    assert first.next_page_token
    rest = posts.ListPostRevisions(
        pb.ListPostRevisionsRequest(post_id=post.id, page_size=2, page_token=first.next_page_token)
    )
    assert [(r.revision, r.title) for r in rest.revisions] == [(0, "v0")]
    assert rest.next_page_token == ""
    times = [r.create_time.ToMicroseconds() for r in [*first.revisions, *rest.revisions]]
    assert times == sorted(times, reverse=True)
    assert rest.revisions[0].create_time == post.create_time
    none = rich_error(posts.ListPostRevisions, pb.ListPostRevisionsRequest(post_id=2**31 - 1))
    assert none.code == grpc.StatusCode.NOT_FOUND
