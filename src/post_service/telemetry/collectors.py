"""Gauges read from live objects: the database pool on each scrape, the outbox periodically."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from post_service.domain.errors import DependencyUnavailable
from post_service.messaging import Outbox
from post_service.telemetry.metrics import Metrics

log = logging.getLogger(__name__)


def watch_pool(pool: asyncpg.Pool, name: str, metrics: Metrics) -> None:
    """``name``: "primary", or "replica" for the pool of DB_READ_URL."""
    metrics.db_pool_size.labels(name).set(pool.get_max_size())
    metrics.db_pool_connections.labels(name, "in_use").set_function(
        lambda: pool.get_size() - pool.get_idle_size()
    )
    metrics.db_pool_connections.labels(name, "idle").set_function(pool.get_idle_size)


async def watch_outbox(outbox: Outbox, metrics: Metrics, interval_seconds: float) -> None:
    """Keeps the outbox gauges current, whether or not Kafka is configured."""
    while True:
        try:
            backlog = await outbox.backlog()
        except DependencyUnavailable:
            pass  # the health monitor reports the outage; keep the last values
        else:
            metrics.outbox_pending.set(backlog.pending)
            metrics.outbox_oldest_age.set(backlog.oldest_age_seconds)
        await asyncio.sleep(interval_seconds)
