"""post.v2 ListPosts through the real process: filters, page sizes, and page tokens that
are stable while posts are created and cannot be forged, altered or carried elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import timestamp_pb2

from devenv.postgres import LocalPostgres
from post_service._generated.post.v2 import post_pb2 as pb
from post_service._generated.post.v2.post_pb2_grpc import PostServiceStub
from post_service.domain.page_tokens import PageTokens
from tests.support.rich_errors import rich_error

pytestmark = pytest.mark.e2e

# Authors of their own (the stand-in User-service knows 1..999): no other test's posts mix in.
PAGING_AUTHOR, SIZES_AUTHOR, WINDOW_AUTHOR, TOKENS_AUTHOR, OTHER_AUTHOR = 901, 902, 903, 904, 905


@pytest.fixture
def posts(channel: grpc.Channel) -> PostServiceStub:
    return PostServiceStub(channel)


def create(posts: PostServiceStub, author: int, title: str) -> pb.Post:
    request = pb.CreatePostRequest(auth_id=author, title=title, body="b")
    created: pb.Post = posts.CreatePost(request, timeout=10)
    return created


def list_page(posts: PostServiceStub, **fields: object) -> pb.ListPostsResponse:
    page: pb.ListPostsResponse = posts.ListPosts(
        pb.ListPostsRequest(**fields),  # type: ignore[arg-type]
        timeout=10,
    )
    return page


def at(year: int) -> timestamp_pb2.Timestamp:
    moment = timestamp_pb2.Timestamp()
    moment.FromDatetime(datetime(year, 1, 1, tzinfo=UTC))
    return moment


def test_paging_while_posts_are_created_gives_no_duplicates_and_no_gaps(
    posts: PostServiceStub,
) -> None:
    existing = [create(posts, PAGING_AUTHOR, f"before {n}").id for n in range(7)]
    seen: list[int] = []
    token = ""
    while True:
        page = list_page(posts, author_id=PAGING_AUTHOR, page_size=3, page_token=token)
        seen += [post.id for post in page.posts]
        for n in range(2):  # newer posts arrive between every two pages
            create(posts, PAGING_AUTHOR, f"during {len(seen)}.{n}")
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(existing, reverse=True)


def test_page_size_has_v1s_default_and_cap(posts: PostServiceStub, postgres: LocalPostgres) -> None:
    postgres.psql(
        "INSERT INTO posts (author_id, title, body) "
        f"SELECT {SIZES_AUTHOR}, 'post ' || i, 'b' FROM generate_series(1, 101) AS i"
    )
    default = list_page(posts, author_id=SIZES_AUTHOR)
    assert len(default.posts) == 20
    capped = list_page(posts, author_id=SIZES_AUTHOR, page_size=1000)
    assert len(capped.posts) == 100
    last = list_page(
        posts, author_id=SIZES_AUTHOR, page_size=1000, page_token=capped.next_page_token
    )
    assert (len(last.posts), last.next_page_token) == (1, "")
    # A token is bound to the filter, not the page size: another size continues the listing.
    resized = list_page(
        posts, author_id=SIZES_AUTHOR, page_size=5, page_token=default.next_page_token
    )
    assert resized.posts[0].id < default.posts[-1].id
    error = rich_error(posts.ListPosts, pb.ListPostsRequest(page_size=-1))
    assert error.field_violations == [("page_size", "must not be negative")]


def test_filters_by_author_name_and_creation_window(
    posts: PostServiceStub, postgres: LocalPostgres
) -> None:
    postgres.psql(
        "INSERT INTO posts (author_id, title, body, created_at, updated_at) "
        f"SELECT {WINDOW_AUTHOR}, 'written ' || y, 'b', make_date(y, 6, 1), make_date(y, 6, 1) "
        "FROM generate_series(2019, 2022) AS y"
    )
    window = list_page(
        posts,
        author_username=f"user-{WINDOW_AUTHOR}",
        create_time_start=at(2020),
        create_time_end=at(2022),
    )
    assert [post.title for post in window.posts] == ["written 2021", "written 2020"]
    assert {post.author.username for post in window.posts} == {f"user-{WINDOW_AUTHOR}"}
    since = list_page(posts, author_id=WINDOW_AUTHOR, create_time_start=at(2021))
    assert [post.title for post in since.posts] == ["written 2022", "written 2021"]

    backwards = rich_error(
        posts.ListPosts, pb.ListPostsRequest(create_time_start=at(2022), create_time_end=at(2020))
    )
    assert [f for f, _ in backwards.field_violations] == ["create_time_end"]
    no_author = rich_error(posts.ListPosts, pb.ListPostsRequest(author_id=0))
    assert no_author.field_violations == [("author_id", "must be a positive id")]
    unknown = rich_error(posts.ListPosts, pb.ListPostsRequest(author_username="nobody-here"))
    assert (unknown.code, unknown.reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")


def test_forged_altered_and_mismatched_page_tokens_are_refused(posts: PostServiceStub) -> None:
    for n in range(3):
        create(posts, TOKENS_AUTHOR, f"token {n}")
        create(posts, OTHER_AUTHOR, f"token {n}")
    issued = list_page(posts, author_id=TOKENS_AUTHOR, page_size=1).next_page_token
    assert list_page(posts, author_id=TOKENS_AUTHOR, page_size=1, page_token=issued).posts

    altered = issued[:-3] + ("A" if issued[-3] != "A" else "B") + issued[-2:]
    # Right format and scope, but signed with a key that is not the service's.
    forged = PageTokens(b"k" * 32).issue(f"ListPosts:{TOKENS_AUTHOR}:None:None", ">i", 2**31 - 1)
    refused = [
        pb.ListPostsRequest(author_id=TOKENS_AUTHOR, page_token="not a token"),
        pb.ListPostsRequest(author_id=TOKENS_AUTHOR, page_token=altered),
        pb.ListPostsRequest(author_id=TOKENS_AUTHOR, page_token=forged),
        pb.ListPostsRequest(author_id=TOKENS_AUTHOR, page_token=issued + "AAAA"),
        pb.ListPostsRequest(author_id=OTHER_AUTHOR, page_token=issued),  # another filter
        pb.ListPostsRequest(page_token=issued),
        pb.ListPostsRequest(author_id=TOKENS_AUTHOR, create_time_start=at(2000), page_token=issued),
    ]
    for request in refused:
        error = rich_error(posts.ListPosts, request)
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT, request
        assert [f for f, _ in error.field_violations] == ["page_token"], request
    # Nor does a listing's token open another method's pages.
    search = rich_error(posts.SearchPosts, pb.SearchPostsRequest(query="token", page_token=issued))
    revisions = rich_error(
        posts.ListPostRevisions, pb.ListPostRevisionsRequest(post_id=1, page_token=issued)
    )
    for error in (search, revisions):
        assert [f for f, _ in error.field_violations] == ["page_token"]
