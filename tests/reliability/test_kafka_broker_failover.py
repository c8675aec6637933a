"""A three-broker Kafka cluster loses one broker under write load through the real service.

The broker killed (SIGKILL, as a lost node) leads a partition of post_events and coordinates
the service's consumer group. Holds when: every acknowledged change has its event on
post_events (counted by distinct event_id; re-sends are allowed by the at-least-once contract
and reported); the relay and the deletion consumer carry on in the same process, and the
group, on a new coordinator, applies deletions produced after the loss; RPCs never fail.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from devenv.kafka_admin import run_blocking
from devenv.kafka_cluster import LocalKafkaCluster
from devenv.post_service_process import PostServiceProcess
from devenv.postgres import LocalPostgres
from devenv.user_service import StandInUserService
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from tests.reliability import support
from tests.reliability.support import Outcome, timed_call
from tests.support.health import SERVING
from tests.support.kafka_client import Topics, produce, read_topic
from tests.support.progress import progress
from tests.support.service_env import env_with_user_service

pytestmark = pytest.mark.e2e

DEADLINE_SECONDS = 5.0
WRITERS = 3
WARM_UP_SECONDS = 1.5
LOAD_AFTER_LOSS_SECONDS = 4.0
WRITE_PAUSE_SECONDS = 0.02  # a modest load: at most ~50 changes/s per writer
MAX_WRITES = 4000
SETTLE_LIMIT_SECONDS = 90.0  # a bound on waiting for the backlog, not a claim about speed
ADMIN_AUTHOR = 900


@pytest.fixture(scope="module")
def kafka_cluster(request: pytest.FixtureRequest) -> Iterator[LocalKafkaCluster]:
    progress(request, "starting a three-broker Kafka cluster (KRaft)")
    started = time.monotonic()
    with LocalKafkaCluster() as cluster:
        progress(request, f"three brokers ready in {time.monotonic() - started:.0f} s")
        yield cluster


@pytest.fixture(scope="module")
def replicated_topics(kafka_cluster: LocalKafkaCluster) -> Topics:
    topics = Topics()
    names = [topics.events, topics.user_deleted, topics.admin_delete, topics.dead_letters]
    kafka_cluster.provision(names, consumer_group=topics.env()["KAFKA_CONSUMER_GROUP"])
    return topics


@dataclass
class ClusterService:
    process: PostServiceProcess
    topics: Topics
    group: str
    database: str


@pytest.fixture(scope="module")
def cluster_service(
    kafka_cluster: LocalKafkaCluster,
    replicated_topics: Topics,
    migrated_database: Callable[[str], str],
    user_service: StandInUserService,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ClusterService]:
    db_url = migrated_database(f"kafka_cluster_{uuid.uuid4().hex[:6]}")
    topic_env = replicated_topics.env()
    env = env_with_user_service(
        db_url,
        user_service.addr,
        KAFKA_BOOTSTRAP_SERVERS=kafka_cluster.bootstrap_servers,
        KAFKA_RETRY_BACKOFF_MAX_SECONDS="1",
        OUTBOX_POLL_INTERVAL_SECONDS="0.1",
        **topic_env,
    )
    process = PostServiceProcess(env, tmp_path_factory.mktemp("kafka-cluster") / "serve.log")
    process.start()
    try:
        yield ClusterService(
            process, replicated_topics, topic_env["KAFKA_CONSUMER_GROUP"], db_url.rsplit("/")[-1]
        )
    finally:
        process.stop()


# --- the cluster as an admin client sees it ---------------------------------------------------


async def _ask(bootstrap: str, question: Callable[[AIOKafkaAdminClient], Any]) -> Any:
    """One admin request, retried while the cluster is still noticing a lost broker."""
    for _ in range(100):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            return await question(admin)
        except KafkaError:
            await asyncio.sleep(0.2)
        finally:
            await admin.close()
    raise TimeoutError("the cluster did not answer")


def partition_leaders(cluster: LocalKafkaCluster, topic: str) -> dict[int, int]:
    async def leaders(admin: AIOKafkaAdminClient) -> dict[int, int]:
        (described,) = await admin.describe_topics([topic])
        return {p["partition"]: p["leader"] for p in described["partitions"]}

    result: dict[int, int] = run_blocking(_ask(cluster.bootstrap_servers, leaders))
    return result


def coordinator_of(cluster: LocalKafkaCluster, group: str) -> int:
    async def find(admin: AIOKafkaAdminClient) -> int:
        return int(await admin.find_coordinator(group))

    result: int = run_blocking(_ask(cluster.bootstrap_servers, find))
    return result


def group_state(cluster: LocalKafkaCluster, group: str) -> tuple[str, int]:
    """The group's state and its number of members."""

    async def describe(admin: AIOKafkaAdminClient) -> tuple[str, int]:
        (response,) = await admin.describe_consumer_groups([group])
        described = response.to_object()["groups"][0]
        return described["state"], len(described["members"])

    result: tuple[str, int] = run_blocking(_ask(cluster.bootstrap_servers, describe))
    return result


# --- load through the service -------------------------------------------------------------------


@dataclass
class ChangeLoad:
    """Creates, edits and deletes of each writer's own posts; every acknowledged change must
    publish exactly one event."""

    outcomes: list[Outcome] = field(default_factory=list)
    changes: Counter[tuple[int, str]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def write(self, stub: PostStub, writer: int) -> None:
        rng, author, own = random.Random(writer), 500 + writer, list[int]()
        while not self.stop.is_set() and len(self.outcomes) < MAX_WRITES:
            roll = rng.random()
            if not own or roll < 0.5:
                request: Any = pb.PostCreateRequest(auth_id=author, title="t", body="b")
                outcome = timed_call("CreatePost", stub.CreatePost, request, DEADLINE_SECONDS)
                post_id = outcome.response.post_id if outcome.ok else 0
                own += [post_id] if outcome.ok else []
                change = "post.created"
            elif roll < 0.8:
                post_id = rng.choice(own)
                request = pb.PostPutRequest(auth_id=author, post_id=post_id, title="e", body="b")
                outcome = timed_call("PutPost", stub.PutPost, request, DEADLINE_SECONDS)
                change = "post.updated"
            else:
                post_id = own.pop(rng.randrange(len(own)))
                request = pb.PostDeleteRequest(auth_id=author, post_id=post_id)
                outcome = timed_call("DeletePost", stub.DeletePost, request, DEADLINE_SECONDS)
                change = "post.deleted"
            with self.lock:
                self.outcomes.append(outcome)
                if outcome.ok:
                    self.changes[(post_id, change)] += 1
            time.sleep(WRITE_PAUSE_SECONDS)


def wait_until(condition: Callable[[], object], limit: float = SETTLE_LIMIT_SECONDS) -> None:
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)


def count(postgres: LocalPostgres, database: str, sql: str) -> int:
    return int(postgres.psql(sql, database=database))


def count_row(postgres: LocalPostgres, database: str, sql: str) -> list[float]:
    return [float(value) for value in postgres.psql(sql, database=database).split("|")]


def test_losing_the_leading_broker_loses_no_event_and_consumption_goes_on(
    kafka_cluster: LocalKafkaCluster,
    cluster_service: ClusterService,
    postgres: LocalPostgres,
    request: pytest.FixtureRequest,
) -> None:
    service, topics = cluster_service.process, cluster_service.topics
    bootstrap = kafka_cluster.bootstrap_servers
    assert service.process is not None
    pid = service.process.pid

    def posts_left(ids: list[int]) -> int:
        listed = ",".join(map(str, ids))
        query = f"SELECT count(*) FROM posts WHERE id IN ({listed})"
        return count(postgres, cluster_service.database, query)

    def delete_by_admin(post_ids: list[int]) -> None:
        messages = [json.dumps({"id": post_id}).encode() for post_id in post_ids]
        asyncio.run(produce(bootstrap, topics.admin_delete, *messages))

    load = ChangeLoad()
    with grpc.insecure_channel(service.addr) as channel:
        stub = PostStub(channel)
        to_delete = [
            stub.CreatePost(pb.PostCreateRequest(auth_id=ADMIN_AUTHOR, title="x", body="b"),
                            timeout=DEADLINE_SECONDS).post_id
            for _ in range(4)
        ]  # fmt: skip
        # The consumer is in the group and applying messages before anything is lost.
        delete_by_admin(to_delete[:1])
        wait_until(lambda: posts_left(to_delete[:1]) == 0)
        assert posts_left(to_delete[:1]) == 0

        leaders = partition_leaders(kafka_cluster, topics.events)
        coordinator = coordinator_of(kafka_cluster, cluster_service.group)
        lost_broker = coordinator if coordinator in leaders.values() else leaders[0]
        led = sorted(p for p, leader in leaders.items() if leader == lost_broker)
        progress(
            request,
            f"write load, then broker {lost_broker} is killed (leads post_events partitions "
            f"{led}; group coordinator: {lost_broker == coordinator})",
        )

        writers = [threading.Thread(target=load.write, args=(stub, n)) for n in range(WRITERS)]
        for thread in writers:
            thread.start()
        try:
            time.sleep(WARM_UP_SECONDS)
            kafka_cluster.node(lost_broker).kill()
            killed_at = time.monotonic()
            delete_by_admin(to_delete[1:])  # produced to the two brokers left
            produced_at = time.monotonic()
            time.sleep(LOAD_AFTER_LOSS_SECONDS)
        finally:
            load.stop.set()
            for thread in writers:
                thread.join(30)

    wait_until(lambda: posts_left(to_delete) == 0)
    deletions_applied_at = time.monotonic()
    pending = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
    wait_until(lambda: count(postgres, cluster_service.database, pending) == 0)
    progress(request, "reading post_events back from the two brokers left")
    records = asyncio.run(read_topic(bootstrap, topics.events))

    events = {r.json()["event_id"]: r.json() for r in records}
    published = Counter((e["post"]["id"], e["event_type"]) for e in events.values())
    expected = load.changes + Counter({(post_id, "post.created"): 1 for post_id in to_delete})
    expected += Counter({(post_id, "post.deleted"): 1 for post_id in to_delete})
    acknowledged = sum(load.changes.values())
    after_loss = [o for o in load.outcomes if o.started > killed_at]
    delays = count_row(
        postgres,
        cluster_service.database,
        "SELECT round(extract(epoch FROM max(sent_at - created_at))::numeric, 2), round("
        "extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY sent_at - created_at))"
        "::numeric, 2) FROM outbox",
    )
    state, members = group_state(kafka_cluster, cluster_service.group)
    new_coordinator = coordinator_of(kafka_cluster, cluster_service.group)
    stall = re.search(r'"publishing post events resumed".*?"stalled_seconds": ([\d.]+)',
                      service.logs())  # fmt: skip
    metrics = support.scrape_metrics(service.metrics_port) or ""
    restarts = re.findall(r"^post_service_worker_restarts_total\{.*\} (\S+)$", metrics, re.M)
    support.record_figure(
        "kafka_broker_loss",
        {
            "rpcs": support.code_counts(load.outcomes),
            "acknowledged_changes": acknowledged,
            "changes_after_loss": len(after_loss),
            "events_expected": sum(expected.values()),
            "events_read_distinct": len(events),
            "events_lost": sum((expected - published).values()),
            "events_unexpected": sum((published - expected).values()),
            "duplicates_seen": len(records) - len(events),
            "lost_broker_led_partitions": led,
            "lost_broker_was_coordinator": lost_broker == coordinator,
            "relay_stalled_s": float(stall.group(1)) if stall else 0.0,
            "event_delay_commit_to_acked_max_s": delays[0],
            "event_delay_commit_to_acked_p99_s": delays[1],
            "deletions_after_loss_applied_within_s": round(deletions_applied_at - produced_at, 1),
            "kill_to_produced_s": round(produced_at - killed_at, 1),
            "group_after": {"state": state, "members": members, "coordinator": new_coordinator},
        },
    )

    assert all(o.ok for o in load.outcomes), support.code_counts(load.outcomes)
    assert after_loss, "the load did not outlast the broker"
    # Every acknowledged change published exactly once, after dropping re-sends.
    assert published == expected
    # The same process relayed and consumed throughout, without a worker restart.
    assert service.process.poll() is None
    assert service.process.pid == pid
    assert all(float(value) == 0 for value in restarts), restarts
    assert service.health("post.Post") == SERVING
    # The group lives on the brokers left, and applied what was produced after the loss.
    assert posts_left(to_delete) == 0
    assert new_coordinator != lost_broker
    assert (state, members) == ("Stable", 1)
