"""Gauges read from live objects: the database pool on each scrape, the outbox periodically."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from post_service.domain.errors import DependencyUnavailable
from post_service.service.ports import Outbox
from post_service.telemetry.metrics import Metrics

log = logging.getLogger(__name__)


def watch_pool(engine: AsyncEngine, metrics: Metrics) -> None:
    pool = engine.sync_engine.pool
    if not isinstance(pool, QueuePool):
        return
    metrics.db_pool_size.set(pool.size())
    metrics.db_pool_connections.labels("in_use").set_function(pool.checkedout)
    metrics.db_pool_connections.labels("idle").set_function(pool.checkedin)


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
