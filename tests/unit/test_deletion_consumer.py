"""The deletion consumer on fakes: apply, then commit, in order; dead letters; retries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition

from post_service.config import KafkaSettings
from post_service.domain.errors import DependencyUnavailable
from post_service.domain.posts import PostContent
from post_service.entrypoints.kafka.deletions import DeletionConsumer
from post_service.messaging import OutboundMessage, PublishFailed
from post_service.service.moderation import ModerationService
from post_service.telemetry.metrics import Metrics
from tests.unit.fakes import FakePostStore


class BrokerRefusingFirst:
    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.published: list[tuple[str, OutboundMessage]] = []

    async def publish(self, topic: str, messages: Sequence[OutboundMessage]) -> None:
        if self.refusals:
            self.refusals -= 1
            raise PublishFailed("publishing to post_service_dlq failed: KafkaTimeoutError")
        self.published += [(topic, message) for message in messages]


def malformed(topic: str, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic, partition=0, offset=offset, timestamp=0, timestamp_type=0,
        key=b"k", value=b"not json", checksum=None, serialized_key_size=1,
        serialized_value_size=8, headers=[],
    )  # fmt: skip


def sample(metrics: Metrics, name: str, topic: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"topic": topic})


async def test_failed_dead_letter_attempts_are_logged_and_counted_until_one_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    broker = BrokerRefusingFirst(refusals=2)
    settings = KafkaSettings(retry_backoff_max_seconds=0.01)
    # A malformed message never reaches the moderation service: it is dead-lettered.
    moderation = ModerationService(FakePostStore(), batch_size=1)
    consumer = DeletionConsumer(settings, moderation, broker, metrics)

    await consumer._handle(malformed("delete", offset=41))

    assert [topic for topic, _ in broker.published] == ["post_service_dlq"]
    headers: dict[str, Any] = dict(broker.published[0][1].headers)
    assert headers["x-origin-offset"] == b"41"
    assert sample(metrics, "post_service_consumer_failed_total", "delete") == 2
    assert sample(metrics, "post_service_consumer_dead_lettered_total", "delete") == 1
    warnings = [r for r in caplog.records if r.getMessage().startswith("dead-lettering failed")]
    assert len(warnings) == 2
    assert "KafkaTimeoutError" in warnings[0].getMessage()


class FakeKafkaConsumer:
    """One fetch of records; remembers each commit with what the store held at that moment."""

    def __init__(self, store: FakePostStore, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        self._store = store
        self._records = records
        self.commits: list[tuple[int, list[int]]] = []

    async def getmany(
        self, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        records, self._records = self._records, []
        return {TopicPartition("delete", 0): records} if records else {}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        ((_, offset),) = offsets.items()
        self.commits.append((offset, self._store.posts_of(USER)))

    def highwater(self, partition: TopicPartition) -> int:
        return 3


class StoreDownOnce(FakePostStore):
    """Set ``down`` and the next transaction finds the database unreachable, then it is back."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def transaction(self) -> Any:
        if self.down:
            self.down = False
            raise DependencyUnavailable("database")
        return super().transaction()


USER = 9


def deletion(offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="delete", partition=0, offset=offset, timestamp=0, timestamp_type=0,
        key=None, value=value, checksum=None, serialized_key_size=0,
        serialized_value_size=len(value), headers=[],
    )  # fmt: skip


async def test_offsets_are_committed_in_order_each_after_its_message_was_applied() -> None:
    store = StoreDownOnce()
    async with store.transaction() as tx:
        for n in range(3):
            await tx.add_post(USER, PostContent(f"t{n}", "b"))
    store.down = True
    metrics = Metrics()
    broker = BrokerRefusingFirst(refusals=0)
    consumer = DeletionConsumer(
        KafkaSettings(retry_backoff_max_seconds=0.01),
        ModerationService(store, batch_size=2),
        broker,
        metrics,
    )
    kafka = FakeKafkaConsumer(store, [deletion(0, b'{"id": 9}'), deletion(1, b"[]")])

    await consumer.consume_batch(kafka)

    # Offset 1 (the deletion applied, after one retry of the outage), then offset 2 (the
    # malformed message, once it was safely dead-lettered).
    assert kafka.commits == [(1, []), (2, [])]
    assert [topic for topic, _ in broker.published] == ["post_service_dlq"]
    assert sample(metrics, "post_service_consumer_failed_total", "delete") == 1
    assert sample(metrics, "post_service_consumer_processed_total", "delete") == 1
    assert (
        metrics.registry.get_sample_value(
            "post_service_consumer_lag", {"topic": "delete", "partition": "0"}
        )
        == 1
    )
