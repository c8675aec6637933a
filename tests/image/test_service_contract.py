"""The v1 contract end to end against `post-service serve` in a hardened container of the image.

The checks are the e2e tests' own (imported below, so pytest runs them here a second time),
with `service` and `posts` pointing at the container, which reads the image tests' database
and asks the stand-in User-service for usernames: health, reflection, create, get, list
(keyset paging, by user), edit, delete, usernames in one call per page, validation errors.
"""

from __future__ import annotations

import pytest

from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from tests.e2e.test_operations import (  # noqa: F401 - collected and run here as well
    test_health_is_serving_for_overall_readiness_and_liveness,
    test_reflection_lists_and_describes_the_post_service,
)
from tests.e2e.test_post_rpcs import (  # noqa: F401 - collected and run here as well
    create,
    test_a_page_of_many_authors_asks_user_service_once,
    test_author_deletes_and_the_post_is_gone,
    test_created_post_is_returned_and_readable_with_its_author_name,
    test_editing_or_deleting_a_missing_post_is_not_found,
    test_invalid_content_is_refused_naming_the_field,
    test_keyset_pages_cover_every_post_once_and_end_with_an_empty_page,
    test_missing_post_is_not_found,
    test_negative_paging_values_are_invalid,
    test_non_positive_ids_are_invalid_arguments,
    test_only_the_author_may_edit_or_delete,
    test_oversized_request_is_refused_as_resource_exhausted,
    test_unicode_round_trips_unchanged,
    test_unknown_username_is_not_found,
    test_user_posts_by_username_or_by_caller,
)

pytestmark = pytest.mark.e2e


def test_the_author_edits_a_post_and_readers_see_the_edit(posts: PostStub) -> None:
    created = create(posts, author=3, title="Old", body="Text")
    edit = pb.PostPutRequest(auth_id=3, post_id=created.post_id, title="New", body="Edited")
    edited = posts.PutPost(edit, timeout=5)
    assert (edited.post_id, edited.title, edited.body, edited.username) == (
        created.post_id, "New", "Edited", "user-3",
    )  # fmt: skip
    fetched = posts.GetByIdPost(pb.PostGetByIdRequest(post_id=created.post_id), timeout=5)
    assert (fetched.title, fetched.body) == ("New", "Edited")
