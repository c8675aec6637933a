"""The deleted-user rules on in-memory fakes: every post goes, and none comes back."""

from __future__ import annotations

import grpc
import pytest

from post_service.domain.errors import PostNotFound, UserDeleted
from post_service.domain.events import DeletionReason, PostCreated, PostDeleted
from post_service.domain.paging import PageLimits
from post_service.entrypoints.grpc.errors import status_of
from post_service.service.moderation import ModerationService
from post_service.service.posts import PostRules, PostService
from post_service.service.usernames import UsernameResolver
from tests.unit.fakes import FakePostStore, FakeUserDirectory

DELETED = 7
OTHER = 8


def post_service(store: FakePostStore) -> PostService:
    usernames = UsernameResolver(FakeUserDirectory(), cache_ttl_seconds=0, cache_size=0)
    return PostService(store, usernames, PostRules(PageLimits(20, 100), max_body_chars=100))


async def test_removing_a_user_keeps_going_past_a_short_batch() -> None:
    store = FakePostStore(batch_caps=iter([3, 1]))  # the second batch comes back short
    posts = post_service(store)
    mine = [(await posts.create_post(DELETED, "t", "b")).post.id for _ in range(8)]
    kept = (await posts.create_post(OTHER, "t", "b")).post.id

    removed = await ModerationService(store, batch_size=3).remove_posts_of_user(DELETED)

    assert removed == 8
    assert store.posts_of(DELETED) == []
    assert store.posts_of(OTHER) == [kept]
    deletions = [e for e in store.data.events if isinstance(e, PostDeleted)]
    assert sorted(e.post_id for e in deletions) == mine
    assert {e.reason for e in deletions} == {DeletionReason.USER_DELETED}


async def test_a_deleted_user_can_neither_create_nor_edit_a_post() -> None:
    store = FakePostStore()
    posts = post_service(store)
    await ModerationService(store, batch_size=3).remove_posts_of_user(DELETED)
    others = (await posts.create_post(OTHER, "t", "b")).post.id
    events_before = list(store.data.events)

    with pytest.raises(UserDeleted, match=r"^auth_id: user 7 was deleted$"):
        await posts.create_post(DELETED, "back", "again")
    with pytest.raises(UserDeleted):
        await posts.edit_post(DELETED, others, "t", "b")  # refused before "not the author"
    with pytest.raises(UserDeleted):
        await posts.edit_post(DELETED, 999, "t", "b")  # and before "no such post"

    assert store.posts_of(DELETED) == []
    assert store.data.events == events_before


async def test_a_post_edit_is_refused_once_its_author_is_recorded_deleted() -> None:
    store = FakePostStore()
    posts = post_service(store)
    post_id = (await posts.create_post(DELETED, "t", "b")).post.id
    async with store.transaction() as tx:  # the deletion's first step, before any batch
        await tx.record_deleted_user(DELETED)

    with pytest.raises(UserDeleted):
        await posts.edit_post(DELETED, post_id, "edited", "b")
    assert store.data.posts[post_id].title == "t"


async def test_a_deleted_users_delete_post_answers_like_anyones() -> None:
    store = FakePostStore()
    posts = post_service(store)
    post_id = (await posts.create_post(DELETED, "t", "b")).post.id
    await ModerationService(store, batch_size=3).remove_posts_of_user(DELETED)

    with pytest.raises(PostNotFound):
        await posts.delete_post(DELETED, post_id)


async def test_replaying_a_user_deletion_removes_nothing_more() -> None:
    store = FakePostStore()
    posts = post_service(store)
    for _ in range(4):
        await posts.create_post(DELETED, "t", "b")
    moderation = ModerationService(store, batch_size=3)
    assert await moderation.remove_posts_of_user(DELETED) == 4
    events = len(store.data.events)

    assert await moderation.remove_posts_of_user(DELETED) == 0
    assert len(store.data.events) == events
    assert store.data.deleted_users == {DELETED}


async def test_other_users_keep_creating_posts() -> None:
    store = FakePostStore()
    await ModerationService(store, batch_size=3).remove_posts_of_user(DELETED)
    created = await post_service(store).create_post(OTHER, "t", "b")
    assert isinstance(store.data.events[-1], PostCreated)
    assert created.username == "user-8"


def test_a_deleted_user_is_permission_denied() -> None:
    assert status_of(UserDeleted(7)) == grpc.StatusCode.PERMISSION_DENIED
