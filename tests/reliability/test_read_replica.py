"""Reads on a read replica (DB_READ_URL): a real streaming standby, its replay paused so that
its lag is deterministic.

Holds when: a post created or edited while the replica lags reads back by id at once and in
its new version (the primary answers, counted as ``lagging``); listings come from the replica
and show what it has replayed (the documented staleness); with the replica stopped every read
still succeeds on the primary, counted as ``unavailable`` and logged once, and readiness stays
SERVING; the replica serves again once it is back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import pytest

from devenv.post_service_process import PostServiceProcess, run_cli, service_env
from devenv.postgres import LocalPostgres
from devenv.user_service import StandInUserService
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from post_service._generated.post.v2 import post_pb2 as pb2
from post_service._generated.post.v2.post_pb2_grpc import PostServiceStub
from tests.reliability.support import scrape_metrics
from tests.support.health import SERVING
from tests.support.progress import progress
from tests.support.service_env import env_with_user_service

pytestmark = pytest.mark.e2e

TIMEOUT = 5.0
AUTHOR = 321
LOST_LINE = "read replica unavailable, reads go to the primary"
BACK_LINE = "answers again; reads go to it"


@dataclass
class ReplicatedService:
    primary: LocalPostgres
    replica: LocalPostgres
    service: PostServiceProcess
    v1: PostStub
    v2: PostServiceStub

    def metric(self, series: str) -> float:
        """One exposed series' value, e.g. ``post_service_db_pool_size{pool="replica"}``."""
        text = scrape_metrics(self.service.metrics_port) or ""
        found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
        assert found, f"no series {series}"
        return float(found.group(1))

    def fallbacks(self, reason: str) -> float:
        return self.metric(f'post_service_read_replica_fallbacks_total{{reason="{reason}"}}')

    def create(self, title: str) -> int:
        request = pb.PostCreateRequest(auth_id=AUTHOR, title=title, body="body")
        return int(self.v1.CreatePost(request, timeout=TIMEOUT).post_id)

    def on_replica(self, post_id: int) -> str:
        """The post's title as the replica has it, "" when it has not replayed the post."""
        return self.replica.psql(f"SELECT title FROM posts WHERE id = {post_id}")

    def log(self) -> str:
        return self.service.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def replicated(
    request: pytest.FixtureRequest,
    user_service: StandInUserService,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ReplicatedService]:
    """A primary, its asynchronous streaming standby as DB_READ_URL, and `post-service serve`."""
    progress(request, "read replica: primary + standby, migrate, serve")
    with LocalPostgres() as primary:
        migrated = run_cli("migrate", env=service_env(primary.url))
        assert migrated.returncode == 0, migrated.stderr
        # Asynchronous: with replay paused or the standby stopped, writes must not wait for it.
        replica = primary.create_standby(synchronous=False, name="replica")
        try:
            env = env_with_user_service(primary.url, user_service.addr, DB_READ_URL=replica.url)
            log_path = tmp_path_factory.mktemp("read-replica") / "serve.log"
            service = PostServiceProcess(env, log_path).start()
            try:
                with grpc.insecure_channel(service.addr) as channel:
                    yield ReplicatedService(
                        primary, replica, service, PostStub(channel), PostServiceStub(channel)
                    )
            finally:
                service.stop()
        finally:
            replica.close()


@pytest.fixture
def lagging(replicated: ReplicatedService) -> Iterator[ReplicatedService]:
    """The replica with WAL replay paused: it receives the primary's changes, applies none."""
    replicated.replica.psql("SELECT pg_wal_replay_pause()")
    yield replicated
    replicated.replica.psql("SELECT pg_wal_replay_resume()")


def wait_until(condition: Callable[[], object], limit: float = 30.0) -> None:
    """Until ``condition()`` is truthy, for at most ``limit`` seconds (a bound, not a claim)."""
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_every_fallback_reason_is_a_series_from_start_up(replicated: ReplicatedService) -> None:
    # The first test of the module: nothing has been read yet.
    for reason in ("unavailable", "lagging", "recovery_conflict"):
        assert replicated.fallbacks(reason) == 0


def test_the_replica_pool_is_measured_beside_the_primary_pool(
    replicated: ReplicatedService,
) -> None:
    replicated.v1.GetGroupPost(pb.PostGetGroupRequest(limit=5), timeout=TIMEOUT)  # on the replica
    for pool in ("primary", "replica"):
        assert replicated.metric(f'post_service_db_pool_size{{pool="{pool}"}}') == 20  # default
        opened = sum(
            replicated.metric(f'post_service_db_pool_connections{{pool="{pool}",state="{state}"}}')
            for state in ("in_use", "idle")
        )
        assert opened >= 1, f"the {pool} pool holds no connection"


def test_a_caught_up_replica_serves_a_post_by_id(replicated: ReplicatedService) -> None:
    post_id = replicated.create("replica-caught-up")
    wait_until(lambda: replicated.on_replica(post_id))
    before = replicated.fallbacks("lagging")
    for _ in range(5):
        request = pb.PostGetByIdRequest(post_id=post_id)
        assert replicated.v1.GetByIdPost(request, timeout=TIMEOUT).title == "replica-caught-up"
    assert replicated.fallbacks("lagging") == before


def test_a_post_created_while_the_replica_lags_is_found_by_id(
    lagging: ReplicatedService,
) -> None:
    before = lagging.fallbacks("lagging")
    post_id = lagging.create("created-while-lagging")
    assert lagging.on_replica(post_id) == ""  # the replica really lags

    v1 = lagging.v1.GetByIdPost(pb.PostGetByIdRequest(post_id=post_id), timeout=TIMEOUT)
    v2 = lagging.v2.GetPost(pb2.GetPostRequest(id=post_id), timeout=TIMEOUT)
    batch = lagging.v2.BatchGetPosts(pb2.BatchGetPostsRequest(ids=[post_id]), timeout=TIMEOUT)

    assert v1.title == v2.title == batch.posts[0].title == "created-while-lagging"
    assert lagging.fallbacks("lagging") >= before + 3


def test_an_edited_post_reads_back_in_its_new_version_while_the_replica_lags(
    replicated: ReplicatedService,
) -> None:
    post_id = replicated.create("before-edit")
    wait_until(lambda: replicated.on_replica(post_id))
    replicated.replica.psql("SELECT pg_wal_replay_pause()")
    try:
        edit = pb.PostPutRequest(auth_id=AUTHOR, post_id=post_id, title="after-edit", body="b")
        replicated.v1.PutPost(edit, timeout=TIMEOUT)
        assert replicated.on_replica(post_id) == "before-edit"  # the replica has the old one

        v1 = replicated.v1.GetByIdPost(pb.PostGetByIdRequest(post_id=post_id), timeout=TIMEOUT)
        v2 = replicated.v2.GetPost(pb2.GetPostRequest(id=post_id), timeout=TIMEOUT)
        revisions = replicated.v2.ListPostRevisions(
            pb2.ListPostRevisionsRequest(post_id=post_id), timeout=TIMEOUT
        )
    finally:
        replicated.replica.psql("SELECT pg_wal_replay_resume()")
    assert v1.title == v2.title == "after-edit"
    assert v2.revision == 1
    assert [(r.revision, r.title) for r in revisions.revisions] == [(0, "before-edit")]


def test_a_listing_shows_what_the_lagging_replica_has_replayed(
    lagging: ReplicatedService,
) -> None:
    post_id = lagging.create("notlistedyet")

    newest = lagging.v1.GetGroupPost(pb.PostGetGroupRequest(limit=50), timeout=TIMEOUT)
    by_author = lagging.v1.GetByIdUserPost(
        pb.PostGetByIdUserRequest(auth_id=AUTHOR), timeout=TIMEOUT
    )
    listed = lagging.v2.ListPosts(pb2.ListPostsRequest(author_id=AUTHOR), timeout=TIMEOUT)
    found = lagging.v2.SearchPosts(pb2.SearchPostsRequest(query="notlistedyet"), timeout=TIMEOUT)

    # The replica's older posts, without the one it has not replayed.
    v1_ids = [{post.post_id for post in response.posts} for response in (newest, by_author)]
    v2_ids = {post.id for post in listed.posts}
    assert all(ids and post_id not in ids for ids in v1_ids)
    assert v2_ids
    assert post_id not in v2_ids
    assert not found.posts

    lagging.replica.psql("SELECT pg_wal_replay_resume()")
    wait_until(lambda: lagging.on_replica(post_id))
    newest = lagging.v1.GetGroupPost(pb.PostGetGroupRequest(limit=50), timeout=TIMEOUT)
    found = lagging.v2.SearchPosts(pb2.SearchPostsRequest(query="notlistedyet"), timeout=TIMEOUT)
    assert post_id in {post.post_id for post in newest.posts}
    assert [post.id for post in found.posts] == [post_id]


def test_reads_go_to_the_primary_while_the_replica_is_down(
    replicated: ReplicatedService,
) -> None:
    post_id = replicated.create("replica-down")
    before = replicated.fallbacks("unavailable")
    replicated.replica.stop()
    try:
        for _ in range(5):
            got = replicated.v1.GetByIdPost(pb.PostGetByIdRequest(post_id=post_id), timeout=TIMEOUT)
            assert got.title == "replica-down"
            listed = replicated.v1.GetGroupPost(pb.PostGetGroupRequest(limit=5), timeout=TIMEOUT)
            assert post_id in {post.post_id for post in listed.posts}
        assert replicated.fallbacks("unavailable") >= before + 10
        assert replicated.log().count(LOST_LINE) == 1
        assert replicated.service.health("post.Post") == SERVING
        assert replicated.service.health("") == SERVING
    finally:
        replicated.replica.start()

    # Back: after the retry interval one read tries the replica again, and it serves.
    def replica_serves() -> bool:
        replicated.v1.GetGroupPost(pb.PostGetGroupRequest(limit=5), timeout=TIMEOUT)
        return BACK_LINE in replicated.log()

    wait_until(replica_serves)
    assert BACK_LINE in replicated.log()
    settled = replicated.fallbacks("unavailable")
    replicated.v1.GetGroupPost(pb.PostGetGroupRequest(limit=5), timeout=TIMEOUT)
    assert replicated.fallbacks("unavailable") == settled
    assert replicated.log().count(LOST_LINE) == 1
