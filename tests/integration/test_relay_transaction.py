"""During a Kafka outage the relay does not hold its outbox transaction open."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from post_service.adapters.postgres.outbox import PostgresOutbox
from post_service.adapters.postgres.pool import Database
from post_service.adapters.postgres.store import PostgresPostStore
from post_service.config import OutboxSettings
from post_service.domain.events import PostCreated
from post_service.domain.posts import PostContent
from post_service.entrypoints.kafka.relay import OutboxRelay
from post_service.messaging import OutboundMessage, PublishFailed
from post_service.telemetry.metrics import Metrics

pytestmark = pytest.mark.integration

OPEN_TRANSACTIONS = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE application_name = 'post-service' AND state LIKE 'idle in transaction%'"
)


class SilentBroker:
    """Accepts the send and never acknowledges it."""

    async def start(self) -> None:
        pass

    async def publish(self, topic: str, messages: Sequence[OutboundMessage]) -> None:
        await asyncio.Event().wait()


class Broker(SilentBroker):
    def __init__(self) -> None:
        self.received: list[OutboundMessage] = []

    async def publish(self, topic: str, messages: Sequence[OutboundMessage]) -> None:
        self.received += messages


def relay(db: Database, publisher: SilentBroker) -> OutboxRelay:
    return OutboxRelay(
        PostgresOutbox(db),
        publisher,
        "post_events",
        OutboxSettings(),
        Metrics(),
        retry_max_seconds=0.1,
        publish_timeout_seconds=0.3,
    )


async def test_an_unacknowledged_publish_rolls_back_and_leaves_the_event_pending(
    db: Database,
) -> None:
    async with PostgresPostStore(db).transaction() as tx:
        post = await tx.add_post(7, PostContent("t", "b"))
        assert post is not None
        await tx.record_events([PostCreated(post)])

    with pytest.raises(PublishFailed):
        await relay(db, SilentBroker()).relay_once()

    assert await db.pool.fetchval(OPEN_TRANSACTIONS) == 0
    assert await db.pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 1
    broker = Broker()
    assert await relay(db, broker).relay_once() == 1, "the row was neither sent nor left locked"
    assert [m.key for m in broker.received] == [str(post.id).encode()]
