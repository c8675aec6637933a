"""Test-side Kafka client helpers: produce, create topics, read a whole topic."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]

    def json(self) -> Any:
        assert self.value is not None
        return json.loads(self.value)


async def create_topics(bootstrap: str, *topics: str, partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for topic in topics:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def produce(
    bootstrap: str, topic: str, *values: bytes, headers: list[tuple[str, bytes]] | None = None
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, headers=headers or [])
    finally:
        await producer.stop()


async def partition_count(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return len(description.get("partitions") or ())


async def read_topic(bootstrap: str, topic: str) -> list[Record]:
    """Every record of ``topic`` from the beginning up to its current end (no group)."""
    count = await partition_count(bootstrap, topic)
    if not count:
        return []
    partitions = [TopicPartition(topic, p) for p in range(count)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Record] = []
        while [p for p in partitions if await consumer.position(p) < ends[p]]:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records += [
                    Record(r.topic, r.partition, r.offset, r.key, r.value, dict(r.headers))
                    for r in batch
                ]
        return records
    finally:
        await consumer.stop()


async def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.2) -> Any:  # noqa: ASYNC109
    """Polls an async or sync predicate until it returns a truthy value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)


class Topics:
    """Fresh topic names per module, so counts start at zero on the shared broker."""

    def __init__(self) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.events = f"post_events_{suffix}"
        self.user_deleted = f"delete_{suffix}"
        self.admin_delete = f"admin_delete_post_{suffix}"
        self.dead_letters = f"post_service_dlq_{suffix}"

    def env(self) -> dict[str, str]:
        return {
            "KAFKA_POST_EVENTS_TOPIC": self.events,
            "KAFKA_USER_DELETED_TOPIC": self.user_deleted,
            "KAFKA_ADMIN_DELETE_POST_TOPIC": self.admin_delete,
            "KAFKA_DEAD_LETTER_TOPIC": self.dead_letters,
            "KAFKA_CONSUMER_GROUP": f"post-service-{uuid.uuid4().hex[:6]}",
        }

    async def create(self, bootstrap: str) -> Topics:
        await create_topics(
            bootstrap, self.events, self.user_deleted, self.admin_delete, self.dead_letters
        )
        return self
