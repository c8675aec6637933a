"""A deleted user's posts on the real PostgreSQL: none survives, locked or created later.

Concurrency is staged, not timed: a second connection holds a lock, and the test waits
until PostgreSQL shows the other side waiting on it (pg_stat_activity) before letting go.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from devenv.post_service_process import ROOT, run_cli, service_env
from devenv.postgres import LocalPostgres
from post_service.adapters.postgres.pool import Database, asyncpg_dsn
from post_service.adapters.postgres.store import PostgresPostStore
from post_service.domain.errors import UserDeleted
from post_service.domain.events import PostCreated
from post_service.domain.paging import PageLimits
from post_service.domain.posts import PostContent
from post_service.service.moderation import ModerationService
from post_service.service.posts import PostRules, PostService
from post_service.service.usernames import UsernameResolver
from tests.unit.fakes import FakeUserDirectory

pytestmark = pytest.mark.integration

DELETED = 9001
OTHER = 9002
ROW_LOCK = ("transactionid", "tuple")
ADVISORY_LOCK = ("advisory",)


@pytest.fixture(autouse=True)
def _no_deleted_users(db_url: str, postgres: LocalPostgres) -> Iterator[None]:
    """The session's database is shared: leave no tombstone for other tests' authors."""
    postgres.psql("TRUNCATE deleted_users")
    yield
    postgres.psql("TRUNCATE deleted_users")


@pytest.fixture
def store(db: Database) -> PostgresPostStore:
    return PostgresPostStore(db)


@pytest.fixture
def posts(store: PostgresPostStore) -> PostService:
    usernames = UsernameResolver(FakeUserDirectory(), cache_ttl_seconds=0, cache_size=0)
    return PostService(store, usernames, PostRules(PageLimits(20, 100), max_body_chars=100))


@pytest.fixture
async def other_connection(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    yield conn
    await conn.close()


async def add_posts(store: PostgresPostStore, author_id: int, count: int) -> list[int]:
    ids = []
    async with store.transaction() as tx:
        for n in range(count):
            post = await tx.add_post(author_id, PostContent(f"t{n}", "b"))
            assert post is not None
            await tx.record_events([PostCreated(post)])
            ids.append(post.id)
    return ids


async def posts_of(db: Database, author_id: int) -> list[int]:
    rows = await db.pool.fetch("SELECT id FROM posts WHERE author_id = $1 ORDER BY id", author_id)
    return [row[0] for row in rows]


async def deletion_events(db: Database, reason: str) -> list[int]:
    rows = await db.pool.fetch(
        "SELECT post_id FROM outbox WHERE event_type = 'post.deleted' "
        "AND payload::jsonb ->> 'reason' = $1 ORDER BY post_id",
        reason,
    )
    return [row[0] for row in rows]


async def waits_on_lock(
    db: Database, task: asyncio.Task[Any], wait_events: tuple[str, ...]
) -> bool:
    """True once a session of this database waits on such a lock; False if ``task`` ended
    first (it never waited). Polls; bounded so a hang fails instead of stalling the run."""
    for _ in range(600):
        if task.done():
            return False
        waiting = await db.pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND wait_event = ANY($1::text[])",
            list(wait_events),
        )
        if waiting:
            return True
        await asyncio.sleep(0.05)
    raise AssertionError(f"{task!r} neither finished nor waited on a lock")


async def test_a_post_locked_by_an_edit_in_flight_is_deleted_once_the_edit_commits(
    db: Database, store: PostgresPostStore, other_connection: asyncpg.Connection
) -> None:
    mine = await add_posts(store, DELETED, 5)
    (kept,) = await add_posts(store, OTHER, 1)
    edit = other_connection.transaction()
    await edit.start()
    await other_connection.execute("SELECT id FROM posts WHERE id = $1 FOR UPDATE", mine[1])
    deletion = asyncio.create_task(
        ModerationService(store, batch_size=2).remove_posts_of_user(DELETED)
    )

    async def finish_edit_once_the_deletion_waits() -> bool:
        waited = await waits_on_lock(db, deletion, ROW_LOCK)
        await other_connection.execute(
            "UPDATE posts SET title = 'edited', version = version + 1 WHERE id = $1", mine[1]
        )
        await edit.commit()
        return waited

    waited = await asyncio.create_task(finish_edit_once_the_deletion_waits())
    removed = await deletion

    assert waited, "the deletion went on without waiting for the locked post"
    assert removed == 5
    assert await posts_of(db, DELETED) == []
    assert await posts_of(db, OTHER) == [kept]
    assert await deletion_events(db, "user_deleted") == mine


async def test_more_posts_than_a_batch_with_the_authors_own_delete_in_flight_all_go(
    db: Database, store: PostgresPostStore, other_connection: asyncpg.Connection
) -> None:
    mine = await add_posts(store, DELETED, 8)
    own_delete = other_connection.transaction()
    await own_delete.start()
    # The author's DeletePost of a post in the second batch, not yet committed.
    await other_connection.execute("DELETE FROM posts WHERE id = $1", mine[4])
    deletion = asyncio.create_task(
        ModerationService(store, batch_size=3).remove_posts_of_user(DELETED)
    )
    waited = await waits_on_lock(db, deletion, ROW_LOCK)
    await own_delete.commit()
    removed = await deletion

    assert waited
    assert removed == 7
    assert await posts_of(db, DELETED) == []
    assert await deletion_events(db, "user_deleted") == mine[:4] + mine[5:]


async def test_a_create_after_the_deletion_is_refused_and_stores_nothing(
    db: Database, store: PostgresPostStore, posts: PostService
) -> None:
    await add_posts(store, DELETED, 3)
    (others,) = await add_posts(store, OTHER, 1)
    await ModerationService(store, batch_size=2).remove_posts_of_user(DELETED)
    outbox_rows = await db.pool.fetchval("SELECT count(*) FROM outbox")

    with pytest.raises(UserDeleted, match=f"^auth_id: user {DELETED} was deleted$"):
        await posts.create_post(DELETED, "back", "again")
    with pytest.raises(UserDeleted):
        await posts.edit_post(DELETED, others, "mine now", "b")

    assert await posts_of(db, DELETED) == []
    assert await db.pool.fetchval("SELECT count(*) FROM outbox") == outbox_rows
    assert (await posts.create_post(OTHER, "still", "welcome")).post.author_id == OTHER


async def test_an_edit_between_the_record_and_the_batches_is_refused(
    db: Database, store: PostgresPostStore, posts: PostService
) -> None:
    (post_id,) = await add_posts(store, DELETED, 1)
    async with store.transaction() as tx:  # the deletion's first step, its batches not yet run
        await tx.record_deleted_user(DELETED)

    with pytest.raises(UserDeleted):
        await posts.edit_post(DELETED, post_id, "edited", "b")
    assert await db.pool.fetchval("SELECT title FROM posts WHERE id = $1", post_id) == "t0"


async def test_a_create_in_flight_when_the_deletion_starts_is_waited_for_then_deleted(
    db: Database, store: PostgresPostStore
) -> None:
    async with store.transaction() as create:
        post = await create.add_post(DELETED, PostContent("racing", "the deletion"))
        assert post is not None
        await create.record_events([PostCreated(post)])
        deletion = asyncio.create_task(
            ModerationService(store, batch_size=2).remove_posts_of_user(DELETED)
        )
        waited = await waits_on_lock(db, deletion, ADVISORY_LOCK)
    removed = await deletion

    assert waited, "the deletion did not wait for the create in flight"
    assert removed == 1
    assert await posts_of(db, DELETED) == []


async def test_a_create_waiting_while_the_deletion_records_the_user_is_refused(
    db: Database, store: PostgresPostStore, posts: PostService
) -> None:
    async with store.transaction() as deletion:
        await deletion.record_deleted_user(DELETED)
        create = asyncio.create_task(posts.create_post(DELETED, "racing", "the deletion"))
        waited = await waits_on_lock(db, create, ADVISORY_LOCK)

    assert waited, "the create did not wait for the deletion's record"
    with pytest.raises(UserDeleted):
        await create  # its INSERT ran after the wait, so it saw the committed record
    assert await posts_of(db, DELETED) == []


async def test_replaying_the_deletion_changes_nothing(
    db: Database, store: PostgresPostStore
) -> None:
    await add_posts(store, DELETED, 3)
    moderation = ModerationService(store, batch_size=2)
    assert await moderation.remove_posts_of_user(DELETED) == 3
    first_deleted_at = await db.pool.fetchval(
        "SELECT deleted_at FROM deleted_users WHERE user_id = $1", DELETED
    )

    assert await moderation.remove_posts_of_user(DELETED) == 0
    assert len(await deletion_events(db, "user_deleted")) == 3
    assert (
        await db.pool.fetchval("SELECT deleted_at FROM deleted_users WHERE user_id = $1", DELETED)
        == first_deleted_at
    )


def test_the_deleted_users_migration_downgrades_and_upgrades_again(
    fresh_database: str, postgres: LocalPostgres
) -> None:
    env = service_env(fresh_database)
    database = fresh_database.rsplit("/", 1)[1]
    assert run_cli("migrate", env=env).returncode == 0
    postgres.psql("INSERT INTO posts (author_id, title, body) VALUES (1, 't', 'b')", database)

    downgrade = alembic(env, "downgrade", "0002")

    assert downgrade.returncode == 0, downgrade.stderr
    exists = "SELECT to_regclass('deleted_users') IS NOT NULL"
    assert postgres.psql(exists, database) == "f"
    assert run_cli("migrate", env=env).returncode == 0
    assert postgres.psql(exists, database) == "t"
    assert postgres.psql("SELECT count(*) FROM posts", database) == "1"


def alembic(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)
