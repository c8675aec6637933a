"""Runs the background workers (Kafka consumer, outbox relay, watchers) and keeps them running.

A worker that fails unexpectedly is logged once with its traceback, counted in
``post_service_worker_restarts_total{worker}`` and started again after a backoff, so one
bug cannot silently stop publishing or consuming while readiness stays SERVING. Expected
outages (the database, Kafka) are waited out inside the workers themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from post_service.entrypoints.kafka.backoff import Backoff
from post_service.telemetry.metrics import Metrics

log = logging.getLogger(__name__)

Worker = Callable[[], Awaitable[None]]

RESTART_BACKOFF_MAX_SECONDS = 30.0


class Supervisor:
    def __init__(
        self, metrics: Metrics, backoff_max_seconds: float = RESTART_BACKOFF_MAX_SECONDS
    ) -> None:
        self._metrics = metrics
        self._backoff_max = backoff_max_seconds
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, workers: Mapping[str, Worker]) -> None:
        for name, worker in workers.items():
            self._metrics.worker_restarts.labels(name)  # a zero series, for increase()
            task = asyncio.create_task(self._keep_running(name, worker), name=name)
            self._tasks.append(task)

    async def stop(self) -> None:
        """Cancels every worker between its steps; never raises what a worker raised."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()

    async def _keep_running(self, name: str, worker: Worker) -> None:
        backoff = Backoff(
            initial_seconds=min(1.0, self._backoff_max), max_seconds=self._backoff_max
        )
        while True:
            started = time.monotonic()
            try:
                await worker()
            except Exception:
                if time.monotonic() - started > self._backoff_max:
                    backoff.reset()  # it had been healthy: a fresh failure, start small
                delay = backoff.next_delay()
                log.exception(
                    "worker failed, restarting",
                    extra={"worker": name, "restart_in_seconds": round(delay, 2)},
                )
                self._metrics.worker_restarts.labels(name).inc()
                await asyncio.sleep(delay)
            else:
                log.info("worker finished", extra={"worker": name})
                return
