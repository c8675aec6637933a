"""Publishes the outbox to Kafka, in commit order, until stopped.

Each publish attempt is bounded: the relay's database transaction (which holds the rows it
is sending) never stays open through a Kafka outage. A stall is logged once at WARNING and
its end once at INFO; the outbox gauges show the backlog and its age meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from post_service.config import OutboxSettings
from post_service.domain.errors import DependencyUnavailable
from post_service.entrypoints.kafka.backoff import Backoff
from post_service.messaging import MessagePublisher, OutboundMessage, Outbox, PublishFailed
from post_service.telemetry.metrics import Metrics

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 300.0


class StartablePublisher(MessagePublisher, Protocol):
    async def start(self) -> None: ...


class OutboxRelay:
    def __init__(
        self,
        outbox: Outbox,
        publisher: StartablePublisher,
        topic: str,
        settings: OutboxSettings,
        metrics: Metrics,
        retry_max_seconds: float,
        publish_timeout_seconds: float,
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._topic = topic
        self._settings = settings
        self._metrics = metrics
        self._backoff = Backoff(max_seconds=retry_max_seconds)
        self._publish_timeout = publish_timeout_seconds
        self._next_prune = 0.0
        self._stall: _Stall | None = None

    async def run(self) -> None:
        while True:
            try:
                sent = await self.relay_once()
            except (DependencyUnavailable, PublishFailed) as error:
                await self._wait_after(error)
                continue
            self._backoff.reset()
            self._end_stall()
            if sent < self._settings.batch_size:
                await asyncio.sleep(self._settings.poll_interval_seconds)

    async def relay_once(self) -> int:
        await self._publisher.start()
        sent = await self._outbox.relay_pending(self._publish, self._settings.batch_size)
        self._metrics.outbox_published.inc(sent)
        await self._prune_if_due()
        return sent

    async def _publish(self, messages: Sequence[OutboundMessage]) -> None:
        try:
            async with asyncio.timeout(self._publish_timeout):
                await self._publisher.publish(self._topic, messages)
        except TimeoutError:
            raise PublishFailed(
                f"no acknowledgement from Kafka within {self._publish_timeout:g} s"
            ) from None

    async def _prune_if_due(self) -> None:
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
        retention = timedelta(hours=self._settings.retention_hours)
        pruned = await self._outbox.prune_sent(retention)
        if pruned:
            log.info("pruned sent outbox rows", extra={"rows": pruned})

    async def _wait_after(self, error: BaseException) -> None:
        self._metrics.outbox_publish_failures.inc()
        delay = self._backoff.next_delay()
        if self._stall is None:
            self._stall = _Stall(since=time.monotonic())
            log.warning(
                "publishing post events stalled, they stay in the outbox and are retried: %s",
                error,
                extra={"error": type(error).__name__, "retry_in_seconds": round(delay, 2)},
            )
        self._stall.attempts += 1
        await asyncio.sleep(delay)

    def _end_stall(self) -> None:
        if self._stall is None:
            return
        log.info(
            "publishing post events resumed",
            extra={
                "stalled_seconds": round(time.monotonic() - self._stall.since, 1),
                "failed_attempts": self._stall.attempts,
            },
        )
        self._stall = None


@dataclass(slots=True)
class _Stall:
    since: float
    attempts: int = 0
