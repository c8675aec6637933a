"""The post use cases on in-memory fakes: ownership, events, paging, usernames."""

from __future__ import annotations

import pytest

from post_service.domain.errors import InvalidPost, NotPostAuthor, PostNotFound, UserNotFound
from post_service.domain.events import DeletionReason, PostCreated, PostDeleted, PostUpdated
from post_service.domain.paging import PageLimits
from post_service.domain.posts import AuthoredPost, Post
from post_service.service.moderation import ModerationService
from post_service.service.posts import PostRules, PostService
from post_service.service.usernames import UsernameResolver
from tests.unit.fakes import FakePostStore, FakeUserDirectory

AUTHOR, OTHER = 3, 4


@pytest.fixture
def store() -> FakePostStore:
    return FakePostStore()


@pytest.fixture
def posts(store: FakePostStore) -> PostService:
    usernames = UsernameResolver(FakeUserDirectory(), cache_ttl_seconds=0, cache_size=0)
    return PostService(store, usernames, PostRules(PageLimits(5, 10), max_body_chars=50))


def whole(written: AuthoredPost) -> Post:
    """The post a create or an edit answers with: whole (with its version), not a summary."""
    assert isinstance(written.post, Post)
    return written.post


async def created_ids(posts: PostService, author: int, count: int) -> list[int]:
    return [(await posts.create_post(author, f"t{n}", "b")).post.id for n in range(count)]


# --- creating ---------------------------------------------------------------------------


async def test_a_created_post_is_named_after_its_author_and_records_one_event(
    posts: PostService, store: FakePostStore
) -> None:
    created = await posts.create_post(AUTHOR, "Hello", "First")
    post = whole(created)
    assert (created.username, post.title, post.version) == ("user-3", "Hello", 1)
    assert store.data.events == [PostCreated(post)]


@pytest.mark.parametrize(
    ("title", "body", "field"),
    [(" ", "b", "title"), ("t", "", "body"), ("t", "x" * 51, "body"), ("a\x00", "b", "title")],
)
async def test_invalid_content_is_refused_naming_the_field_and_records_nothing(
    posts: PostService, store: FakePostStore, title: str, body: str, field: str
) -> None:
    with pytest.raises(InvalidPost) as refused:
        await posts.create_post(AUTHOR, title, body)
    assert refused.value.field == field
    assert store.data.posts == {}
    assert store.data.events == []


# --- editing and deleting: the author only ---------------------------------------------


async def test_the_author_edits_and_each_edit_records_one_event_with_the_next_version(
    posts: PostService, store: FakePostStore
) -> None:
    (post_id,) = await created_ids(posts, AUTHOR, 1)
    first = whole(await posts.edit_post(AUTHOR, post_id, "t2", "b2"))
    second = whole(await posts.edit_post(AUTHOR, post_id, "t3", "b3"))
    assert (first.version, second.version) == (2, 3)
    assert store.data.events[1:] == [PostUpdated(first), PostUpdated(second)]


async def test_someone_elses_post_is_permission_denied_and_a_missing_one_not_found(
    posts: PostService, store: FakePostStore
) -> None:
    (post_id,) = await created_ids(posts, AUTHOR, 1)
    events = list(store.data.events)
    with pytest.raises(NotPostAuthor):
        await posts.edit_post(OTHER, post_id, "mine now", "b")
    with pytest.raises(NotPostAuthor):
        await posts.delete_post(OTHER, post_id)
    with pytest.raises(PostNotFound):
        await posts.edit_post(AUTHOR, post_id + 100, "t", "b")
    with pytest.raises(PostNotFound):
        await posts.delete_post(AUTHOR, post_id + 100)
    assert store.data.events == events, "a refused change records no event"
    assert store.data.posts[post_id].title == "t0"


async def test_the_author_deletes_and_the_event_says_so(
    posts: PostService, store: FakePostStore
) -> None:
    (post_id,) = await created_ids(posts, AUTHOR, 1)
    await posts.delete_post(AUTHOR, post_id)
    assert store.data.events[-1] == PostDeleted(post_id, AUTHOR, DeletionReason.AUTHOR)
    with pytest.raises(PostNotFound):
        await posts.get_post(post_id)


# --- paging ------------------------------------------------------------------------------


async def test_pages_are_newest_first_with_the_default_size_and_capped(
    posts: PostService,
) -> None:
    ids = await created_ids(posts, AUTHOR, 12)
    newest_first = ids[::-1]
    assert [p.post.id for p in await posts.list_posts(0, 0)] == newest_first[:5]
    assert [p.post.id for p in await posts.list_posts(500, 0)] == newest_first[:10]
    assert [p.post.id for p in await posts.list_posts(3, newest_first[2])] == newest_first[3:6]
    assert await posts.list_posts(3, min(ids)) == []


@pytest.mark.parametrize(("limit", "last_id", "field"), [(-1, 0, "limit"), (1, -1, "last_id")])
async def test_negative_paging_values_are_refused(
    posts: PostService, limit: int, last_id: int, field: str
) -> None:
    with pytest.raises(InvalidPost) as refused:
        await posts.list_posts(limit, last_id)
    assert refused.value.field == field


async def test_a_users_posts_by_name_or_by_id_and_an_unknown_name(posts: PostService) -> None:
    mine = await created_ids(posts, AUTHOR, 3)
    await created_ids(posts, OTHER, 2)
    by_name = await posts.list_user_posts("user-3", caller_id=0)
    by_id = await posts.list_user_posts("", caller_id=AUTHOR)
    assert [p.post.id for p in by_name] == [p.post.id for p in by_id] == mine[::-1]
    assert {p.username for p in by_name} == {"user-3"}
    with pytest.raises(UserNotFound):
        await posts.list_user_posts("nobody", caller_id=0)


# --- moderation ---------------------------------------------------------------------------


async def test_a_moderator_removes_one_post_once_and_a_replay_changes_nothing(
    posts: PostService, store: FakePostStore
) -> None:
    first, second = await created_ids(posts, AUTHOR, 2)
    moderation = ModerationService(store, batch_size=10)
    assert await moderation.remove_post(first) is True
    events = list(store.data.events)
    assert await moderation.remove_post(first) is False
    assert store.data.events == events
    assert events[-1] == PostDeleted(first, AUTHOR, DeletionReason.ADMIN)
    assert store.posts_of(AUTHOR) == [second]
