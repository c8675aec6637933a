"""The one Kafka producer per process: idempotent, acks=all."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from post_service.config import KafkaSettings
from post_service.messaging import OutboundMessage, PublishFailed


class KafkaPublisher:
    def __init__(self, settings: KafkaSettings) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            client_id="post-service",
            # Idempotence: a retried send never writes a second copy, and per-partition
            # order holds across retries.
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            request_timeout_ms=int(settings.request_timeout_seconds * 1000),
            retry_backoff_ms=200,
        )
        self._started = False

    async def start(self) -> None:
        """Connects; raises while the broker cannot be reached (the caller retries)."""
        if self._started:
            return
        try:
            await self._producer.start()
        except Exception as error:
            raise PublishFailed(f"Kafka unreachable: {type(error).__name__}") from error
        self._started = True

    async def stop(self) -> None:
        # Also after a start() that was cancelled half-way, which leaves open connections.
        await self._producer.stop()
        self._started = False

    async def publish(self, topic: str, messages: Sequence[OutboundMessage]) -> None:
        try:
            sent = [
                await self._producer.send(topic, value=m.value, key=m.key, headers=list(m.headers))
                for m in messages
            ]
            await asyncio.gather(*sent)
        except Exception as error:  # aiokafka raises several unrelated error types
            raise PublishFailed(f"publishing to {topic} failed: {type(error).__name__}") from error
