"""Changes made through post.v2 publish the same post_events as v1's, through the outbox
and a real Kafka broker; a refused change publishes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from devenv.kafka import LocalKafka
from devenv.post_service_process import PostServiceProcess
from post_service._generated.post.v2 import post_pb2 as pb
from post_service._generated.post.v2.post_pb2_grpc import PostServiceStub
from tests.e2e.test_kafka_events import wait_for_events
from tests.e2e.test_v2_posts import create, update
from tests.support.kafka_client import Topics
from tests.support.rich_errors import rich_error

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Draft202012Validator(
    json.loads((ROOT / "schemas" / "post_event.schema.json").read_text()),
    format_checker=FormatChecker(),
)


@pytest.fixture(scope="module")
def posts(kafka_service: PostServiceProcess) -> Iterator[PostServiceStub]:
    with grpc.insecure_channel(kafka_service.addr) as channel:
        yield PostServiceStub(channel)


async def test_v2_changes_publish_post_events_and_a_stale_etag_publishes_none(
    posts: PostServiceStub, kafka: LocalKafka, topics: Topics
) -> None:
    created = create(posts, author=31, title="first", body="b", request_id=str(uuid.uuid4()))
    edited = update(posts, created, "title", title="second", etag=created.etag)
    stale = rich_error(
        posts.UpdatePost,
        pb.UpdatePostRequest(auth_id=31, id=created.id, title="lost", etag=created.etag),
    )
    assert stale.code == grpc.StatusCode.ABORTED
    posts.DeletePost(pb.DeletePostRequest(auth_id=31, id=created.id, etag=edited.etag), timeout=10)

    events = await wait_for_events(kafka, topics, {created.id}, 3)

    assert [e.json()["event_type"] for e in events] == [
        "post.created",
        "post.updated",
        "post.deleted",
    ]
    for event in events:
        SCHEMA.validate(event.json())
        assert event.key == str(created.id).encode()
    assert (events[1].json()["post"]["title"], events[1].json()["post"]["version"]) == (
        "second",
        2,
    )
    assert events[2].json()["reason"] == "author"
