"""Consumes the platform's deletion events and applies them, at least once, in order.

- ``delete`` (User-service): a user account was deleted; remove all their posts.
- ``admin_delete_post`` (admin service): a moderator removed one post.

An offset is committed only after the database transaction that applied the
message committed. A replay is harmless (deleting what is gone is a no-op). A
database outage is waited out on the same message; a malformed message goes to
the dead-letter topic and is committed, so it never stalls the partition.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from post_service.config import KafkaSettings
from post_service.domain.errors import DependencyUnavailable
from post_service.entrypoints.kafka.backoff import Backoff
from post_service.entrypoints.kafka.messages import MalformedMessage, parse_target_id
from post_service.messaging import MessagePublisher, PublishFailed, dead_letter_message
from post_service.service.moderation import ModerationService
from post_service.telemetry.metrics import Metrics

log = logging.getLogger(__name__)


class DeletionConsumer:
    def __init__(
        self,
        settings: KafkaSettings,
        moderation: ModerationService,
        dead_letters: MessagePublisher,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._moderation = moderation
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._topics = (settings.user_deleted_topic, settings.admin_delete_post_topic)

    async def run(self) -> None:
        consumer = await self._connect()
        try:
            while True:
                await self.consume_batch(consumer)
        finally:
            await consumer.stop()

    async def consume_batch(self, consumer: AIOKafkaConsumer) -> None:
        """Applies (or dead-letters) each fetched record, committing its offset only after."""
        batches = await consumer.getmany(timeout_ms=1000, max_records=200)
        for partition, records in batches.items():
            for record in records:
                await self._handle(record)
                await self._commit(consumer, partition, record.offset + 1)
            if records:
                self._record_lag(consumer, partition, records[-1].offset + 1)

    async def _connect(self) -> AIOKafkaConsumer:
        backoff = Backoff(max_seconds=self._settings.retry_backoff_max_seconds)
        while True:
            consumer = AIOKafkaConsumer(
                *self._topics,
                bootstrap_servers=self._settings.bootstrap_servers,
                group_id=self._settings.consumer_group,
                client_id="post-service",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                # A message the size limit refuses is still fetched; keep fetches bounded.
                max_partition_fetch_bytes=max(self._settings.max_message_bytes * 4, 1 << 20),
            )
            try:
                await consumer.start()
            except BaseException as error:
                await consumer.stop()
                if not isinstance(error, KafkaError):
                    raise
                delay = backoff.next_delay()
                log.warning(
                    "Kafka unreachable, consumer retrying",
                    extra={"error": type(error).__name__, "retry_in_seconds": delay},
                )
                await asyncio.sleep(delay)
                continue
            self._metrics.known_topics(self._topics)
            await self._warn_about_missing_topics(consumer)
            log.info("consuming", extra={"topics": list(self._topics)})
            return consumer

    async def _warn_about_missing_topics(self, consumer: AIOKafkaConsumer) -> None:
        """Once per start: a topic that does not exist yet is consumed once it is created."""
        try:
            existing = await consumer.topics()
        except KafkaError:
            return  # the broker went away again; the consumer's own retries cover it
        for topic in self._topics:
            if topic not in existing:
                log.warning(
                    "topic %r does not exist yet: subscribed, its messages are consumed "
                    "once the platform creates it (this service never creates topics)",
                    topic,
                    extra={"topic": topic},
                )

    async def _handle(self, record: ConsumerRecord[Any, Any]) -> None:
        context = propagate.extract(_text_headers(record.headers))
        tracer = trace.get_tracer(__name__)
        with tracer.start_as_current_span(
            f"{record.topic} process",
            context=context,
            kind=SpanKind.CONSUMER,
            attributes=_messaging_attributes(record, self._settings.consumer_group),
        ):
            try:
                target = parse_target_id(record.value, self._settings.max_message_bytes)
            except MalformedMessage as error:
                await self._dead_letter(record, str(error))
                return
            await self._apply(record.topic, target)

    async def _apply(self, topic: str, target: int) -> None:
        backoff = Backoff(max_seconds=self._settings.retry_backoff_max_seconds)
        while True:
            try:
                if topic == self._settings.user_deleted_topic:
                    removed = await self._moderation.remove_posts_of_user(target)
                else:
                    removed = int(await self._moderation.remove_post(target))
            except DependencyUnavailable:
                self._metrics.consumer_failed.labels(topic).inc()
                delay = backoff.next_delay()
                log.warning(
                    "database unavailable, message will be retried",
                    extra={"topic": topic, "retry_in_seconds": round(delay, 2)},
                )
                await asyncio.sleep(delay)
                continue
            self._metrics.consumer_processed.labels(topic).inc()
            log.info("deletion applied", extra={"topic": topic, "posts_removed": removed})
            return

    async def _dead_letter(self, record: ConsumerRecord[Any, Any], error: str) -> None:
        message = dead_letter_message(
            (record.topic, record.partition, record.offset),
            record.key,
            record.value,
            record.headers or (),
            error,
        )
        backoff = Backoff(max_seconds=self._settings.retry_backoff_max_seconds)
        while True:
            try:
                await self._dead_letters.publish(self._settings.dead_letter_topic, [message])
                break
            except PublishFailed as failure:
                # The message is not committed until it is safely dead-lettered: retry.
                self._metrics.consumer_failed.labels(record.topic).inc()
                delay = backoff.next_delay()
                log.warning(
                    "dead-lettering failed, will retry: %s",
                    failure,
                    extra={
                        "topic": record.topic,
                        "offset": record.offset,
                        "dead_letter_topic": self._settings.dead_letter_topic,
                        "retry_in_seconds": round(delay, 2),
                    },
                )
                await asyncio.sleep(delay)
        self._metrics.consumer_dead_lettered.labels(record.topic).inc()
        log.warning(
            "malformed message dead-lettered",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "error": error,
            },
        )

    async def _commit(
        self, consumer: AIOKafkaConsumer, partition: TopicPartition, offset: int
    ) -> None:
        try:
            await consumer.commit({partition: offset})
        except CommitFailedError:
            # The partition moved to another replica in a rebalance; it resumes from the
            # last committed offset and re-applies this message harmlessly.
            log.warning("offset commit lost to a rebalance", extra={"topic": partition.topic})

    def _record_lag(
        self, consumer: AIOKafkaConsumer, partition: TopicPartition, next_offset: int
    ) -> None:
        end = consumer.highwater(partition)
        if end is not None:
            lag = max(end - next_offset, 0)
            self._metrics.consumer_lag.labels(partition.topic, str(partition.partition)).set(lag)


def _text_headers(headers: Any) -> dict[str, str]:
    return {name: value.decode("utf-8", "replace") for name, value in headers or () if value}


def _messaging_attributes(record: ConsumerRecord[Any, Any], group: str) -> dict[str, str | int]:
    return {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": record.topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.kafka.offset": record.offset,
        "messaging.consumer.group.name": group,
    }
