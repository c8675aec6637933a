"""Hostile input on the consumed topics: random bytes, wrong JSON, odd ids and headers.

Every message must end either in the dead-letter topic or as a clean no-op, the
consumer must keep going, and nothing but what a valid message names may be deleted.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devenv.kafka import LocalKafka
from devenv.post_service_process import PostServiceProcess
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from tests.support.kafka_client import Topics, produce, read_topic, wait_for

pytestmark = pytest.mark.e2e

# Valid-looking ids are drawn far above anything this module creates, so a "valid"
# fuzzed deletion can never hit a sentinel post and must be a no-op.
SAFE_ID_FLOOR = 1_000_000_000
json_scalars = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=20),
    st.integers(min_value=-(2**70), max_value=2**70).filter(lambda n: not 0 < n < SAFE_ID_FLOOR),
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
unknown_ids = st.integers(min_value=SAFE_ID_FLOOR, max_value=2**31 - 1)
documents = st.one_of(
    st.fixed_dictionaries({"id": unknown_ids}),
    st.fixed_dictionaries({"id": json_values}),
    st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    json_values,
).map(lambda doc: json.dumps(doc).encode())
values = st.one_of(documents, st.binary(max_size=200))
headers = st.lists(st.tuples(st.text(min_size=1, max_size=12), st.binary(max_size=40)), max_size=3)
messages = st.lists(
    st.tuples(st.sampled_from(["user", "admin"]), values, headers), min_size=1, max_size=8
)

produced: list[tuple[str, bytes]] = []


def would_apply(value: bytes) -> bool:
    """Independent oracle: a JSON object whose "id" is a positive int32 (not a bool)."""
    try:
        document = json.loads(value)
    except ValueError:
        return False
    target = document.get("id") if isinstance(document, dict) else None
    return type(target) is int and 0 < target < 2**31


def counter(metrics_port: int, name: str, topic: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(rf'^{name}{{topic="{re.escape(topic)}"}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_fuzzed_deletion_messages_are_dead_lettered_or_harmless(
    stub: PostStub, kafka: LocalKafka, topics: Topics, kafka_service: PostServiceProcess
) -> None:
    sentinels = [
        stub.CreatePost(
            pb.PostCreateRequest(auth_id=author, title="keep", body="me"), timeout=5
        ).post_id
        for author in range(1, 21)
    ]
    topic_of = {"user": topics.user_deleted, "admin": topics.admin_delete}

    @settings(
        max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(batch=messages)
    def send(batch: list[tuple[str, bytes, list[tuple[str, bytes]]]]) -> None:
        async def produce_all() -> None:
            for kind, value, extra in batch:
                await produce(kafka.bootstrap_servers, topic_of[kind], value, headers=extra)
                produced.append((topic_of[kind], value))

        asyncio.run(produce_all())

    send()
    marker = stub.CreatePost(pb.PostCreateRequest(auth_id=99, title="marker", body="b"), timeout=5)
    asyncio.run(
        produce(
            kafka.bootstrap_servers,
            topics.admin_delete,
            json.dumps({"id": marker.post_id}).encode(),
        )
    )

    def marker_gone() -> bool:
        try:
            stub.GetByIdPost(pb.PostGetByIdRequest(post_id=marker.post_id), timeout=5)
        except grpc.RpcError as error:
            return bool(error.code() == grpc.StatusCode.NOT_FOUND)
        return False

    asyncio.run(wait_for(marker_gone, timeout=60))  # the consumer kept its pace behind the fuzz

    for post_id in sentinels:
        assert stub.GetByIdPost(pb.PostGetByIdRequest(post_id=post_id), timeout=5).title == "keep"
    letters = asyncio.run(read_topic(kafka.bootstrap_servers, topics.dead_letters))
    expected_letters = [value for _, value in produced if not would_apply(value)]
    assert sorted(r.value or b"" for r in letters) == sorted(expected_letters)
    assert all(r.headers.get("x-error") for r in letters)
    port = kafka_service.metrics_port
    handled = sum(
        counter(port, "post_service_consumer_processed_total", topic)
        + counter(port, "post_service_consumer_dead_lettered_total", topic)
        for topic in topic_of.values()
    )
    assert handled == len(produced) + 1  # every message accounted for, plus the marker
    print(f"kafka fuzz: {len(produced)} messages, {len(letters)} dead-lettered")
