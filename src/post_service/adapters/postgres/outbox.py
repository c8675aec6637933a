"""The outbox side of the relay: pending rows out in order, marked sent, pruned later."""

from __future__ import annotations

import json
from datetime import timedelta

from post_service.adapters.postgres.pool import Database
from post_service.messaging import OutboxBacklog, Publish, post_event_message

# One relay at a time across replicas keeps each post's events in commit order; the
# others find the lock taken and skip the round. Any fixed 64-bit number will do.
RELAY_LOCK_KEY = 0x5057_5354_5245_4C59

TRY_RELAY_LOCK = "SELECT pg_try_advisory_xact_lock($1)"
PENDING = (
    "SELECT id, post_id, event_type, payload, trace_context FROM outbox "
    "WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"
)
MARK_SENT = "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])"
PRUNE_SENT = "DELETE FROM outbox WHERE sent_at < now() - $1::interval"
BACKLOG = (
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 "
    "FROM outbox WHERE sent_at IS NULL"
)


class PostgresOutbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def relay_pending(self, publish: Publish, limit: int) -> int:
        async with self._db.connection() as conn, conn.transaction():
            if not await conn.fetchval(TRY_RELAY_LOCK, RELAY_LOCK_KEY):
                return 0
            rows = await conn.fetch(PENDING, limit)
            if not rows:
                return 0
            await publish(
                [
                    post_event_message(
                        row["post_id"],
                        row["event_type"],
                        row["payload"],
                        json.loads(row["trace_context"]),
                    )
                    for row in rows
                ]
            )
            # Marked only after the broker acknowledged: a crash in between re-sends the
            # batch (at-least-once); consumers deduplicate on event_id.
            await conn.execute(MARK_SENT, [row["id"] for row in rows])
            return len(rows)

    async def prune_sent(self, older_than: timedelta) -> int:
        async with self._db.connection() as conn:
            status: str = await conn.execute(PRUNE_SENT, older_than)
        return int(status.rsplit(" ", 1)[1])  # "DELETE <count>"

    async def backlog(self) -> OutboxBacklog:
        async with self._db.connection() as conn:
            pending, oldest_age = await conn.fetchrow(BACKLOG)
        return OutboxBacklog(pending=int(pending), oldest_age_seconds=float(oldest_age))
