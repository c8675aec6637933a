"""The local Kafka harness (devenv/kafka.py) runs a real broker that keeps its data across restarts.

Uses the real aiokafka client against one module-scoped broker: a produce/consume round trip,
then a clean stop and an abrupt kill, each followed by a start on the same port with the
earlier messages still there. Provisioning creates the topics post-service uses, as the platform
would, idempotently. And the real storage tool: a cluster id that begins with "-" (which
random_cluster_id() no longer returns) fails the start, which removes its directory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from devenv.kafka import LocalKafka
from devenv.kafka_admin import KafkaStartError, service_topics
from post_service.config import KafkaSettings

pytestmark = pytest.mark.integration

TIMEOUT_SECONDS = 30.0


@pytest.fixture(scope="module")
def kafka() -> Iterator[LocalKafka]:
    with LocalKafka() as broker:
        yield broker


async def produce(bootstrap_servers: str, topic: str, *values: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        for value in values:
            await asyncio.wait_for(producer.send_and_wait(topic, value), TIMEOUT_SECONDS)
    finally:
        await producer.stop()


async def consume(bootstrap_servers: str, topic: str, count: int) -> list[bytes]:
    """Read ``count`` messages of ``topic`` from the beginning (no consumer group)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while len(values) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            values.extend(record.value for records in batches.values() for record in records)
    finally:
        await consumer.stop()
    return values


async def list_topics(bootstrap_servers: str) -> dict[str, int]:
    """Every topic the broker knows, with its partition count."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    return {topic["topic"]: len(topic["partitions"]) for topic in described}


async def find_coordinator(bootstrap_servers: str, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        return int(await admin.find_coordinator(group))
    finally:
        await admin.close()


async def test_round_trip_through_an_auto_created_topic(kafka: LocalKafka) -> None:
    assert kafka.bootstrap_servers == f"127.0.0.1:{kafka.port}"
    assert kafka.pid is not None

    await produce(kafka.bootstrap_servers, "harness-round-trip", b"hello")

    assert await consume(kafka.bootstrap_servers, "harness-round-trip", 1) == [b"hello"]


async def test_stop_and_start_keep_port_and_data(kafka: LocalKafka) -> None:
    await produce(kafka.bootstrap_servers, "harness-restart", b"before-stop")
    address = kafka.bootstrap_servers

    await asyncio.to_thread(kafka.stop)
    assert kafka.pid is None
    await asyncio.to_thread(kafka.start)

    assert kafka.bootstrap_servers == address
    assert await consume(address, "harness-restart", 1) == [b"before-stop"]


async def test_kill_and_start_keep_acknowledged_data(kafka: LocalKafka) -> None:
    await produce(kafka.bootstrap_servers, "harness-kill", b"before-kill")

    old_pid = kafka.pid
    await asyncio.to_thread(kafka.kill)
    await asyncio.to_thread(kafka.start)

    assert kafka.pid not in (None, old_pid)
    await produce(kafka.bootstrap_servers, "harness-kill", b"after-kill")
    values = await consume(kafka.bootstrap_servers, "harness-kill", 2)
    assert sorted(values) == [b"after-kill", b"before-kill"]


def test_a_start_that_fails_to_format_removes_its_directory() -> None:
    broker = LocalKafka()
    # What random_cluster_id() returned once in 64 calls: kafka-storage reads it as an option.
    broker.cluster_id = "-" + broker.cluster_id[1:]

    with pytest.raises(KafkaStartError, match="formatting Kafka storage failed"):
        broker.start()

    assert not broker.dir.exists()


async def test_provisioning_creates_the_services_topics_from_its_settings(
    kafka: LocalKafka,
) -> None:
    settings = KafkaSettings(
        user_deleted_topic="prov_delete",
        admin_delete_post_topic="prov_admin_delete_post",
        post_events_topic="prov_post_events",
        dead_letter_topic="prov_dlq",
        consumer_group="prov-group",
    )
    wanted = service_topics(settings)
    assert set(wanted) == {"prov_delete", "prov_admin_delete_post", "prov_post_events", "prov_dlq"}
    assert not set(wanted) & set(await list_topics(kafka.bootstrap_servers))

    await asyncio.to_thread(kafka.provision, wanted, settings.consumer_group)
    await asyncio.to_thread(kafka.provision, wanted, settings.consumer_group)  # idempotent

    topics = await list_topics(kafka.bootstrap_servers)
    assert {name: topics.get(name) for name in wanted} == dict.fromkeys(
        wanted, kafka.num_partitions
    )
    assert await find_coordinator(kafka.bootstrap_servers, settings.consumer_group) >= 0
