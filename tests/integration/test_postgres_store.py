"""PostgresPostStore and the migrations, on the real PostgreSQL the session started."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from devenv.post_service_process import ROOT, run_cli, service_env
from devenv.postgres import LocalPostgres
from post_service.adapters.postgres import store as store_sql
from post_service.adapters.postgres.migrations import head_revision
from post_service.adapters.postgres.outbox import PostgresOutbox
from post_service.adapters.postgres.pool import Database
from post_service.adapters.postgres.store import PostgresPostStore
from post_service.adapters.postgres.tables import metadata
from post_service.domain.events import PostCreated
from post_service.domain.paging import Page
from post_service.domain.posts import Post, PostContent
from post_service.messaging import OutboundMessage, PublishFailed
from post_service.service.ports import PostWriter

pytestmark = pytest.mark.integration


async def stored(tx: PostWriter, author_id: int, title: str = "t") -> Post:
    """tx.add_post for an author whose account was never deleted: the post, never None."""
    post = await tx.add_post(author_id, PostContent(title, "b"))
    assert post is not None, f"author {author_id} is not deleted, so the post is stored"
    return post


async def count(db: Database, table: str) -> int:
    return int(await db.pool.fetchval(f"SELECT count(*) FROM {table}"))  # a test's own constant


async def test_a_change_and_its_event_commit_together(db: Database) -> None:
    store = PostgresPostStore(db, trace_context=lambda: {"traceparent": "00-abc-def-01"})
    async with store.transaction() as tx:
        post = await stored(tx, 7)
        await tx.record_events([PostCreated(post)])
    (row,) = await db.pool.fetch("SELECT * FROM outbox")
    assert (row["post_id"], row["event_type"], row["sent_at"]) == (post.id, "post.created", None)
    assert json.loads(row["payload"])["post"]["id"] == post.id
    assert json.loads(row["trace_context"]) == {"traceparent": "00-abc-def-01"}


async def test_a_failure_after_the_insert_leaves_neither_post_nor_event(
    db: Database,
) -> None:
    store = PostgresPostStore(db)

    async def create_then_fail() -> None:
        async with store.transaction() as tx:
            post = await stored(tx, 7)
            await tx.record_events([PostCreated(post)])
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await create_then_fail()
    assert await count(db, "posts") == 0
    assert await count(db, "outbox") == 0


async def test_keyset_pages_follow_each_other_newest_first(db: Database) -> None:
    store = PostgresPostStore(db)
    async with store.transaction() as tx:
        ids = [(await stored(tx, n % 3 + 1, f"t{n}")).id for n in range(10)]
    async with store.reading() as reader:
        first = await reader.list_newest(Page(size=4, before_id=None))
        second = await reader.list_newest(Page(size=4, before_id=first[-1].id))
        by_author = await reader.list_by_author(2, limit=100)
    assert [p.id for p in [*first, *second]] == sorted(ids, reverse=True)[:8]
    assert [p.id for p in by_author] == sorted(
        (i for n, i in enumerate(ids) if n % 3 == 1), reverse=True
    )


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """A plan node and every node under it, depth first."""
    return [plan, *(node for child in plan.get("Plans", ()) for node in plan_nodes(child))]


async def executed_plan(db: Database, query: str, *args: object) -> list[dict[str, Any]]:
    """The nodes of the plan PostgreSQL ran for ``query`` with these arguments (EXPLAIN ANALYZE)."""
    (explained,) = json.loads(
        await db.pool.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}", *args)
    )
    return plan_nodes(explained["Plan"])


PAGE = 4
ROWS = 20_000


@pytest.mark.parametrize(
    ("query", "args", "index"),
    [
        (store_sql.LIST_NEWEST, (PAGE,), "pk_posts"),
        (store_sql.LIST_OLDER_THAN, (PAGE, ROWS // 2), "pk_posts"),  # a page deep in the table
        (store_sql.LIST_BY_AUTHOR, (1, PAGE), "ix_posts_author_id_id"),
    ],
    ids=["first-page", "deep-page", "by-author"],
)
async def test_keyset_listing_uses_the_index_not_offset(
    db: Database, query: str, args: tuple[object, ...], index: str
) -> None:
    # 500 authors of 40 posts each: a forum's spread. With only a few prolific authors the
    # planner may rightly walk the primary key backwards and filter instead.
    await db.pool.execute(
        "INSERT INTO posts (author_id, title, body) "
        f"SELECT g % 500 + 1, 't', 'b' FROM generate_series(1, {ROWS}) AS g"
    )
    await db.pool.execute("ANALYZE posts")

    nodes = await executed_plan(db, query, *args)

    assert not {"Sort", "Incremental Sort", "Seq Scan"} & {node["Node Type"] for node in nodes}
    (scan,) = [node for node in nodes if node["Node Type"] in {"Index Scan", "Index Only Scan"}]
    assert (scan["Relation Name"], scan["Index Name"]) == ("posts", index)
    # The scan stops at the page: an OFFSET would have read (and thrown away) every row before
    # it, 10,000 rows for the deep page.
    assert scan["Actual Rows"] * scan["Actual Loops"] == PAGE
    assert "OFFSET" not in query.upper()


async def test_the_plan_check_sees_what_an_offset_page_would_read(db: Database) -> None:
    await db.pool.execute(
        "INSERT INTO posts (author_id, title, body) "
        f"SELECT g % 20 + 1, 't', 'b' FROM generate_series(1, {ROWS}) AS g"
    )
    await db.pool.execute("ANALYZE posts")
    offset_page = "SELECT id FROM posts ORDER BY id DESC LIMIT $1 OFFSET $2"

    nodes = await executed_plan(db, offset_page, PAGE, ROWS // 2)

    (scan,) = [node for node in nodes if node["Node Type"] in {"Index Scan", "Index Only Scan"}]
    assert scan["Actual Rows"] * scan["Actual Loops"] == ROWS // 2 + PAGE


async def test_deleting_a_users_posts_goes_in_bounded_batches(db: Database) -> None:
    store = PostgresPostStore(db)
    async with store.transaction() as tx:
        mine = [(await stored(tx, 4)).id for _ in range(5)]
        other = (await stored(tx, 5)).id
    async with store.transaction() as tx:
        first = await tx.delete_posts_of_author(4, limit=3)
    async with store.transaction() as tx:
        second = await tx.delete_posts_of_author(4, limit=3)
    assert (list(first), list(second)) == (mine[:3], mine[3:])
    async with store.reading() as reader:
        assert await reader.get_post(other) is not None


async def test_the_migrated_schema_matches_the_table_definitions(db_url: str) -> None:
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await engine.dispose()
    assert differences == []


def test_migrations_downgrade_to_base_and_upgrade_again(
    fresh_database: str, postgres: LocalPostgres
) -> None:
    env = service_env(fresh_database)
    assert run_cli("migrate", env=env).returncode == 0
    ini = str(ROOT / "alembic.ini")  # the developers' way in, beside `post-service migrate`
    database = fresh_database.rsplit("/", 1)[1]
    downgrade = run_alembic(ini, env, "downgrade", "base")
    assert downgrade.returncode == 0, downgrade.stderr
    assert (
        postgres.psql(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('posts', 'outbox')",
            database=database,
        )
        == "0"
    )
    assert run_cli("migrate", env=env).returncode == 0
    assert postgres.psql("SELECT version_num FROM alembic_version", database=database) == (
        head_revision()
    )


def run_alembic(ini: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "alembic", "-c", ini, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


async def test_the_relay_marks_published_rows_sent_and_pruning_keeps_recent_ones(
    db: Database,
) -> None:
    store = PostgresPostStore(db)
    async with store.transaction() as tx:
        posts_made = [await stored(tx, 3, f"t{n}") for n in range(3)]
        await tx.record_events([PostCreated(post) for post in posts_made])
    outbox_adapter = PostgresOutbox(db)
    published: list[OutboundMessage] = []

    async def publish(messages: Sequence[OutboundMessage]) -> None:
        published.extend(messages)

    assert (await outbox_adapter.backlog()).pending == 3
    assert await outbox_adapter.relay_pending(publish, limit=2) == 2
    assert await outbox_adapter.relay_pending(publish, limit=2) == 1
    assert [m.key for m in published] == [str(p.id).encode() for p in posts_made]
    assert (await outbox_adapter.backlog()).pending == 0
    await db.pool.execute(
        "UPDATE outbox SET sent_at = now() - interval '2 days' WHERE post_id = $1",
        posts_made[0].id,
    )
    assert await outbox_adapter.prune_sent(timedelta(hours=24)) == 1
    assert await count(db, "outbox") == 2


async def test_a_failed_publish_leaves_the_rows_pending(db: Database) -> None:
    store = PostgresPostStore(db)
    async with store.transaction() as tx:
        post = await stored(tx, 3)
        await tx.record_events([PostCreated(post)])

    async def broker_down(messages: Sequence[OutboundMessage]) -> None:
        raise PublishFailed("broker down")

    with pytest.raises(PublishFailed):
        await PostgresOutbox(db).relay_pending(broker_down, limit=10)
    assert (await PostgresOutbox(db).backlog()).pending == 1
