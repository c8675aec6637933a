"""The local Kafka harness (devenv/kafka.py) runs a real broker that keeps its data across restarts.

Uses the real aiokafka client against one module-scoped broker: a produce/consume round trip,
then a clean stop and an abrupt kill, each followed by a start on the same port with the
earlier messages still there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from devenv.kafka import LocalKafka

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
