"""A malformed message is dead-lettered; each failed attempt to do so is logged and counted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pytest
from aiokafka.structs import ConsumerRecord

from post_service.config import KafkaSettings
from post_service.entrypoints.kafka.deletions import DeletionConsumer
from post_service.messaging import OutboundMessage, PublishFailed
from post_service.service.moderation import ModerationService
from post_service.telemetry.metrics import Metrics


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
    moderation = cast(ModerationService, None)  # a malformed message never reaches it
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
