"""The outbox side of the relay: pending rows out in order, marked sent, pruned later."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from post_service.adapters.post_events import CONTENT_TYPE
from post_service.adapters.postgres.engine import unavailable_when_unreachable
from post_service.adapters.postgres.tables import outbox
from post_service.service.ports import OutboundMessage, OutboxBacklog, Publish

# One relay at a time across replicas keeps each post's events in commit order; the
# others find the lock taken and skip the round. Any fixed 64-bit number will do.
RELAY_LOCK_KEY = 0x5057_5354_5245_4C59
_TRACE_HEADERS = ("traceparent", "tracestate")


class PostgresOutbox:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def relay_pending(self, publish: Publish, limit: int) -> int:
        async with unavailable_when_unreachable(), self._engine.begin() as conn:
            locked = await conn.scalar(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": RELAY_LOCK_KEY}
            )
            if not locked:
                return 0
            rows = (
                await conn.execute(
                    select(
                        outbox.c.id,
                        outbox.c.post_id,
                        outbox.c.event_type,
                        outbox.c.payload,
                        outbox.c.trace_context,
                    )
                    .where(outbox.c.sent_at.is_(None))
                    .order_by(outbox.c.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            await publish(
                [
                    _message(row.post_id, row.event_type, row.payload, row.trace_context)
                    for row in rows
                ]
            )
            # Marked only after the broker acknowledged: a crash in between re-sends the
            # batch (at-least-once); consumers deduplicate on event_id.
            await conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([row.id for row in rows]))
                .values(sent_at=func.now())
            )
            return len(rows)

    async def prune_sent(self, older_than: timedelta) -> int:
        async with unavailable_when_unreachable(), self._engine.begin() as conn:
            result = await conn.execute(
                delete(outbox).where(outbox.c.sent_at < func.now() - older_than)
            )
            return int(result.rowcount)

    async def backlog(self) -> OutboxBacklog:
        async with unavailable_when_unreachable(), self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        func.count(),
                        func.coalesce(
                            func.extract("epoch", func.now() - func.min(outbox.c.created_at)), 0
                        ),
                    ).where(outbox.c.sent_at.is_(None))
                )
            ).one()
        return OutboxBacklog(pending=int(row[0]), oldest_age_seconds=float(row[1]))


def _message(post_id: int, event_type: str, payload: str, trace_context: str) -> OutboundMessage:
    context: dict[str, str] = json.loads(trace_context)
    headers = [("content-type", CONTENT_TYPE.encode()), ("event_type", event_type.encode())]
    headers += [(name, context[name].encode()) for name in _TRACE_HEADERS if name in context]
    return OutboundMessage(
        key=str(post_id).encode(), value=payload.encode(), headers=tuple(headers)
    )
