"""post.v2's store on the real PostgreSQL: revisions kept by every edit path and deleted
with their post, request ids kept a day and then pruned, search on the generated column."""

from __future__ import annotations

import uuid

import pytest

from devenv.postgres import LocalPostgres
from post_service.adapters.postgres.pool import Database
from post_service.adapters.postgres.store import PostgresPostStore
from post_service.adapters.postgres.store_v2 import PostgresPostStoreV2
from post_service.domain.listing import SearchFilter
from post_service.domain.posts import PostContent
from post_service.domain.versions import PostChange
from post_service.service.ports_v2 import EarlierRequest
from post_service.service.posts_v2 import REQUEST_ID_RETENTION

pytestmark = pytest.mark.integration


async def test_v1_edits_keep_revisions_and_they_go_with_the_post(db: Database) -> None:
    v1, v2 = PostgresPostStore(db), PostgresPostStoreV2(db)
    async with v1.transaction() as tx:
        post = await tx.add_post(7, PostContent("first", "one"))
        assert post is not None
        await tx.update_if_author(post.id, 7, PostContent("second", "two"))
    async with v2.transaction() as tx:
        await tx.update_post(post.id, 7, PostChange(title="third", body=None), None)
    async with v2.reading() as reader:
        revisions = await reader.list_revisions(post.id, None, 10)
    assert [(r.revision, r.title, r.body) for r in revisions] == [
        (1, "second", "two"),
        (0, "first", "one"),
    ]
    async with v1.transaction() as tx:
        await tx.delete_if_author(post.id, 7)
    assert await db.pool.fetchval("SELECT count(*) FROM post_revisions") == 0


async def test_a_conditional_update_on_a_stale_version_changes_nothing(db: Database) -> None:
    v2 = PostgresPostStoreV2(db)
    async with v2.transaction() as tx:
        post = await tx.add_post(8, PostContent("t", "b"))
        assert post is not None
        assert await tx.update_post(post.id, 8, PostChange("new", None), post.version + 1) is None
        assert not await tx.delete_post_if(post.id, 8, post.version + 1)
    async with v2.reading() as reader:
        unchanged = await reader.get_versioned(post.id)
        assert await reader.list_revisions(post.id, None, 10) == []
    assert unchanged is not None
    assert (unchanged.title, unchanged.version) == ("t", 1)


async def test_request_ids_are_kept_a_day_then_pruned(
    db: Database, postgres: LocalPostgres
) -> None:
    v2 = PostgresPostStoreV2(db)
    old, recent = uuid.uuid4(), uuid.uuid4()
    async with v2.transaction() as tx:
        assert await tx.claim_request(old, b"old") is None
        assert await tx.claim_request(recent, b"recent") is None
    for request_id, age in ((old, "24 hours 1 minute"), (recent, "23 hours 59 minutes")):
        postgres.psql(
            f"UPDATE create_requests SET created_at = now() - interval '{age}' "
            f"WHERE request_id = '{request_id}'"
        )
    async with v2.transaction() as tx:
        assert await tx.prune_requests(REQUEST_ID_RETENTION, 10) == 1
        assert await tx.claim_request(recent, b"recent") == EarlierRequest(b"recent", None)
        assert await tx.claim_request(old, b"new") is None  # forgotten: a fresh claim


async def test_search_uses_the_generated_column_and_its_gin_index(db: Database) -> None:
    v2 = PostgresPostStoreV2(db)
    async with v2.transaction() as tx:
        for n in range(30):
            await tx.add_post(9, PostContent(f"noise {n}", "nothing to see"))
        wanted = await tx.add_post(9, PostContent("Котики", "пушистые"))
    assert wanted is not None
    async with v2.reading() as reader:
        found = await reader.search(SearchFilter("котик"), None, 10)
    assert [post.id for post, _ in found] == [wanted.id]
    async with db.connection() as conn:
        await conn.execute("SET enable_seqscan = off")  # 31 rows: make the planner show its index
        plan = "\n".join(
            row[0]
            for row in await conn.fetch(
                "EXPLAIN SELECT id FROM posts "
                "WHERE search @@ websearch_to_tsquery('russian', 'котик')"
            )
        )
        await conn.execute("RESET enable_seqscan")
    assert "ix_posts_search" in plan
