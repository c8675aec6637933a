"""post.v2 messages: the listing encoder answers exactly what field-by-field building
would, for every response that holds posts, and its cache never serves a stale post."""

from __future__ import annotations

import pytest

from post_service._generated.post.v2 import post_pb2 as pb
from post_service.domain.versions import VersionedPost
from post_service.entrypoints.grpc.v2_messages import PostEncoder

T0 = 1_764_236_160_123_456

PageResponse = pb.ListPostsResponse | pb.SearchPostsResponse | pb.BatchGetPostsResponse


def post(post_id: int, version: int = 1, title: str = "t") -> VersionedPost:
    return VersionedPost(post_id, 7, title, "body", T0, T0 + version - 1, version)


@pytest.mark.parametrize(
    "response_type", [pb.ListPostsResponse, pb.SearchPostsResponse, pb.BatchGetPostsResponse]
)
def test_a_page_is_the_posts_in_order_whatever_the_response(
    response_type: type[PageResponse],
) -> None:
    assert response_type.DESCRIPTOR.fields_by_name["posts"].number == 1
    encoder = PostEncoder()
    posts = [post(3), post(1), post(3)]
    response = response_type()
    encoder.add_posts(response, posts, {7: "user-7"})
    assert list(response.posts) == [encoder.post(p, "user-7") for p in posts]
    shown = response.posts[0]
    assert (shown.author.username, shown.etag, shown.revision) == ("user-7", '"1"', 0)
    assert shown.create_time.ToMicroseconds() == T0


def test_an_edit_or_a_rename_is_never_answered_from_the_cache() -> None:
    encoder = PostEncoder()
    first, edited = pb.ListPostsResponse(), pb.ListPostsResponse()
    encoder.add_posts(first, [post(1)], {7: "user-7"})
    encoder.add_posts(edited, [post(1, version=2, title="new")], {7: "renamed"})
    assert (edited.posts[0].title, edited.posts[0].revision) == ("new", 1)
    assert edited.posts[0].author.username == "renamed"
    assert edited.posts[0].update_time.ToMicroseconds() == T0 + 1


def test_the_cache_stays_within_its_byte_budget() -> None:
    encoder = PostEncoder(max_bytes=500)
    for post_id in range(1, 50):
        encoder.add_posts(pb.ListPostsResponse(), [post(post_id)], {})
    assert encoder._bytes <= 500
    assert 0 < len(encoder._entries) < 49
