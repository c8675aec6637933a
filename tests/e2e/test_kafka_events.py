"""Kafka, end to end against a real broker: published post events and consumed deletions."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from devenv.kafka import LocalKafka
from devenv.lifecycle import free_port
from devenv.post_service_process import PostServiceProcess, run_cli
from devenv.postgres import LocalPostgres
from devenv.user_service import StandInUserService
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from tests.support.kafka_client import (
    Record,
    Topics,
    create_topics,
    produce,
    read_topic,
    wait_for,
)
from tests.support.service_env import env_with_user_service

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Draft202012Validator(
    json.loads((ROOT / "schemas" / "post_event.schema.json").read_text()),
    format_checker=FormatChecker(),
)


def create(stub: PostStub, author: int, title: str = "t") -> pb.PostOutResponse:
    request = pb.PostCreateRequest(auth_id=author, title=title, body="b")
    created: pb.PostOutResponse = stub.CreatePost(request, timeout=5)
    return created


async def events_of(kafka: LocalKafka, topic: str, post_ids: set[int]) -> list[Record]:
    return [
        r
        for r in await read_topic(kafka.bootstrap_servers, topic)
        if r.json()["post"]["id"] in post_ids
    ]


async def wait_for_events(
    kafka: LocalKafka, topics: Topics, post_ids: set[int], count: int
) -> list[Record]:
    async def enough() -> list[Record] | None:
        found = await events_of(kafka, topics.events, post_ids)
        return found if len(found) >= count else None

    found: list[Record] = await wait_for(enough)
    return found


def pending_outbox_rows(postgres: LocalPostgres, db_url: str) -> int:
    return int(
        postgres.psql(
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL", database=db_url.rsplit("/", 1)[1]
        )
    )


async def test_every_change_publishes_one_valid_event_keyed_by_post(
    stub: PostStub, kafka: LocalKafka, topics: Topics
) -> None:
    created = create(stub, author=21, title="first")
    stub.PutPost(
        pb.PostPutRequest(auth_id=21, post_id=created.post_id, title="second", body="b"), timeout=5
    )
    stub.DeletePost(pb.PostDeleteRequest(auth_id=21, post_id=created.post_id), timeout=5)

    events = await wait_for_events(kafka, topics, {created.post_id}, 3)

    assert [e.json()["event_type"] for e in events] == [
        "post.created",
        "post.updated",
        "post.deleted",
    ]
    assert {e.key for e in events} == {str(created.post_id).encode()}
    assert len({e.partition for e in events}) == 1
    for event in events:
        SCHEMA.validate(event.json())
        assert event.headers["content-type"] == b"application/json"
        assert event.headers["event_type"].decode() == event.json()["event_type"]
    created_event, updated_event, deleted_event = (e.json() for e in events)
    assert created_event["post"]["title"] == "first"
    assert (updated_event["post"]["title"], updated_event["post"]["version"]) == ("second", 2)
    assert deleted_event["post"] == {"id": created.post_id, "author_id": 21}
    assert deleted_event["reason"] == "author"
    assert len({e.json()["event_id"] for e in events}) == 3


async def test_user_deleted_event_removes_all_their_posts_in_batches_and_replay_is_harmless(
    stub: PostStub, kafka: LocalKafka, topics: Topics, postgres: LocalPostgres, kafka_db: str
) -> None:
    doomed = {create(stub, author=31).post_id for _ in range(7)}  # batch size is 3
    survivor = create(stub, author=32).post_id
    await produce(kafka.bootstrap_servers, topics.user_deleted, json.dumps({"id": 31}).encode())

    deletions = await wait_for_events(kafka, topics, doomed, 14)  # 7 created + 7 deleted
    deleted = [e.json() for e in deletions if e.json()["event_type"] == "post.deleted"]
    assert {d["post"]["id"] for d in deleted} == doomed
    assert {d["reason"] for d in deleted} == {"user_deleted"}
    for event in deleted:
        SCHEMA.validate(event)

    await produce(kafka.bootstrap_servers, topics.user_deleted, json.dumps({"id": 31}).encode())
    marker = create(stub, author=33).post_id  # published after the replay was consumed
    await produce(kafka.bootstrap_servers, topics.admin_delete, json.dumps({"id": marker}).encode())
    await wait_for_events(kafka, topics, {marker}, 2)
    assert len(await events_of(kafka, topics.events, doomed)) == 14, "the replay emitted events"
    database = kafka_db.rsplit("/", 1)[1]
    assert (
        postgres.psql("SELECT count(*) FROM posts WHERE author_id = 31", database=database) == "0"
    )
    assert stub.GetByIdPost(pb.PostGetByIdRequest(post_id=survivor), timeout=5).post_id == survivor


async def test_admin_delete_removes_exactly_that_post(
    stub: PostStub, kafka: LocalKafka, topics: Topics
) -> None:
    target = create(stub, author=41)
    # A user whose id equals the post id must keep their posts.
    namesake = create(stub, author=target.post_id)
    other = create(stub, author=41)
    await produce(
        kafka.bootstrap_servers, topics.admin_delete, json.dumps({"id": target.post_id}).encode()
    )

    events = await wait_for_events(kafka, topics, {target.post_id}, 2)
    assert events[-1].json()["reason"] == "admin"
    for kept in (namesake, other):
        assert (
            stub.GetByIdPost(pb.PostGetByIdRequest(post_id=kept.post_id), timeout=5).post_id
            == kept.post_id
        )


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (b"not json", "value is not JSON"),
        (b"[1, 2]", "value is not a JSON object"),
        (b'{"user": 5}', 'no "id" field'),
        (b'{"id": "5"}', '"id" is not an integer'),
        (b'{"id": true}', '"id" is not an integer'),
        (b'{"id": -4}', '"id" -4 is not a positive 32-bit id'),
        (b'{"id": 99999999999}', '"id" 99999999999 is not a positive 32-bit id'),
        (b'{"id": 1, "pad": "' + b"x" * 70_000 + b'"}', "exceeds"),
    ],
)
async def test_malformed_messages_go_to_the_dead_letter_topic_and_the_next_one_is_applied(
    stub: PostStub, kafka: LocalKafka, topics: Topics, value: bytes, error: str
) -> None:
    target = create(stub, author=51)
    trace = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
    await produce(kafka.bootstrap_servers, topics.admin_delete, value, headers=trace)
    await produce(
        kafka.bootstrap_servers, topics.admin_delete, json.dumps({"id": target.post_id}).encode()
    )

    await wait_for_events(kafka, topics, {target.post_id}, 2)
    letters = [
        r
        for r in await read_topic(kafka.bootstrap_servers, topics.dead_letters)
        if r.value == value
    ]
    assert len(letters) == 1
    headers = letters[0].headers
    assert headers["x-origin-topic"] == topics.admin_delete.encode()
    assert int(headers["x-origin-offset"]) >= 0
    assert int(headers["x-origin-partition"]) >= 0
    assert error in headers["x-error"].decode()
    assert headers["traceparent"] == trace[0][1]


async def test_rpcs_succeed_while_the_broker_is_down_and_every_change_is_published_after(
    stub: PostStub, kafka: LocalKafka, topics: Topics, postgres: LocalPostgres, kafka_db: str
) -> None:
    kafka.stop()
    try:
        ids = [create(stub, author=61, title=f"offline {n}").post_id for n in range(10)]
        for post_id in ids[:5]:
            stub.PutPost(
                pb.PostPutRequest(auth_id=61, post_id=post_id, title="edited", body="b"), timeout=5
            )
        assert pending_outbox_rows(postgres, kafka_db) >= 15
    finally:
        kafka.start()
    events = await wait_for_events(kafka, topics, set(ids), 15)
    event_ids = [e.json()["event_id"] for e in events]
    assert len(set(event_ids)) == 15, "every change published, none lost"
    await wait_for(lambda: pending_outbox_rows(postgres, kafka_db) == 0)


async def test_two_relaying_processes_publish_each_event_once(
    stub: PostStub,
    kafka: LocalKafka,
    topics: Topics,
    kafka_service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    env = {key: value for key, value in kafka_service_env.items() if key != "GRPC_PORT"}
    second = PostServiceProcess({**env, "METRICS_PORT": str(free_port())}, tmp_path / "2.log")
    second.start()
    try:
        with grpc.insecure_channel(second.addr) as channel:
            other = PostStub(channel)
            ids = {create(stub if n % 2 else other, author=71).post_id for n in range(40)}
        events = await wait_for_events(kafka, topics, ids, 40)
    finally:
        second.stop()
    assert len(events) == 40
    assert len({e.json()["event_id"] for e in events}) == 40


async def test_messages_arriving_while_the_database_is_down_are_applied_after_it_returns(
    kafka: LocalKafka, user_service: StandInUserService, tmp_path: Path
) -> None:
    own = Topics()
    await create_topics(kafka.bootstrap_servers, own.events, own.admin_delete, own.user_deleted,
                        own.dead_letters)  # fmt: skip
    with LocalPostgres() as cluster:
        env = env_with_user_service(
            cluster.url,
            user_service.addr,
            KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap_servers,
            KAFKA_RETRY_BACKOFF_MAX_SECONDS="1",
            **own.env(),
        )
        assert run_cli("migrate", env=env).returncode == 0
        process = PostServiceProcess(env, tmp_path / "serve.log").start()
        try:
            with grpc.insecure_channel(process.addr) as channel:
                stub = PostStub(channel)
                ids = [create(stub, author=81).post_id for _ in range(5)]
            cluster.stop("immediate")
            for post_id in ids:
                await produce(kafka.bootstrap_servers, own.admin_delete,
                              json.dumps({"id": post_id}).encode())  # fmt: skip
            await asyncio.sleep(3)  # the consumer retries against the dead database meanwhile
            cluster.start()
            remaining = "SELECT count(*) FROM posts WHERE author_id = 81"
            await wait_for(lambda: cluster.psql(remaining) == "0", timeout=60)
            deleted = await wait_for_events(kafka, own, set(ids), 10)
            assert sorted(
                e.json()["post"]["id"] for e in deleted if e.json()["event_type"] == "post.deleted"
            ) == sorted(ids)
            assert "database unavailable, message will be retried" in process.logs()
        finally:
            process.stop()
