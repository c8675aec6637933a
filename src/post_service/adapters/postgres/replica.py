"""Reads on a streaming replica (DB_READ_URL), and when they go to the primary instead.

Two kinds of read, chosen by the store for each query:

- ``fresh``, for posts asked for by id: a client that has just created or edited a post must
  read it back, from whichever pod it asks. The replica answers only if it has replayed all
  the WAL the primary had written when the read began: its replay position, read on the same
  connection just before the query, is at least the primary's insert position, read after
  the call began. Every commit acknowledged before the read is then visible on the replica;
  otherwise the primary answers (reason ``lagging``). The primary's position is one statement
  without table access, shared by every read that arrived while the previous one ran.
- ``listing``: whatever the replica has replayed. A listing can lag the primary by the
  replication lag: a new post missing, an edited one in its old version, a deleted one still
  there. Listings are the reads a replica exists for; sending them to the primary whenever
  the replica lags would move the heaviest reads onto the primary exactly when it is busiest.

When the replica cannot be reached, reads go to the primary (reason ``unavailable``) and the
replica is left alone for ``REPLICA_RETRY_SECONDS``, after which one read tries it again. One
log line says when the replica is lost and one when it answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from post_service.adapters.postgres.errors import explain_connect_failure
from post_service.adapters.postgres.pool import Database
from post_service.domain.errors import DependencyUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
Query = Callable[[asyncpg.Connection], Awaitable[T]]

REPLICA_RETRY_SECONDS = 5.0
UNAVAILABLE = "unavailable"
LAGGING = "lagging"
# A replayed change cancelled the replica's query (SQLSTATE 40001 "conflict with recovery").
RECOVERY_CONFLICT = "recovery_conflict"
FALLBACK_REASONS = (UNAVAILABLE, LAGGING, RECOVERY_CONFLICT)

# Positions as plain numbers (bytes since 0/0). The insert position covers commits that are
# acknowledged but not yet flushed (synchronous_commit = off) too. On an idle primary it can
# point just past the header of a page that holds no record yet (40 bytes at the start of a
# segment, 24 on other pages; e.g. after archive_timeout switched segments), where a caught-up
# replica's replay position is the page boundary: such a position counts as the boundary.
PRIMARY_POSITION = (
    "SELECT CASE WHEN at % pg_size_bytes(current_setting('wal_segment_size')) = 40 THEN at - 40 "
    "WHEN at % current_setting('wal_block_size')::int8 = 24 THEN at - 24 ELSE at END "
    "FROM (SELECT (pg_current_wal_insert_lsn() - '0/0')::int8 AS at) AS insert"
)
# DB_READ_URL naming the primary itself (a development set-up) is never behind.
REPLAYED_POSITION = (
    "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
    "ELSE pg_current_wal_insert_lsn() END - '0/0')::int8"
)


class ReadReplica:
    """Runs read queries on the replica or, when it cannot serve them, on the primary."""

    def __init__(
        self,
        primary: Database,
        replica: Database,
        on_fallback: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary = primary
        self._replica = replica
        self._on_fallback = on_fallback
        self._clock = clock
        self._primary_position = PrimaryPosition(primary)
        self._down = False
        self._retry_at = 0.0

    async def fresh(self, query: Query[T]) -> T:
        """``query`` on a server that has every commit acknowledged before this call."""
        if not self._may_try_replica():
            return await self._on_primary(query, UNAVAILABLE)
        wanted = await self._primary_position.now()
        return await self._read(query, wanted)

    async def listing(self, query: Query[T]) -> T:
        """``query`` on the replica as far as it has replayed, or on the primary if it is down."""
        if not self._may_try_replica():
            return await self._on_primary(query, UNAVAILABLE)
        return await self._read(query, wanted=None)

    async def _read(self, query: Query[T], wanted: int | None) -> T:
        try:
            async with self._replica.connection() as conn:
                caught_up = (
                    wanted is None or (await conn.fetchval(REPLAYED_POSITION) or 0) >= wanted
                )
                self._answered()
                if caught_up:
                    return await query(conn)
            reason = LAGGING
        except DependencyUnavailable as error:
            self._lost(error)
            reason = UNAVAILABLE
        except asyncpg.TransactionRollbackError:
            reason = RECOVERY_CONFLICT
        return await self._on_primary(query, reason)

    async def _on_primary(self, query: Query[T], reason: str) -> T:
        self._on_fallback(reason)
        async with self._primary.connection() as conn:
            return await query(conn)

    def _may_try_replica(self) -> bool:
        if not self._down:
            return True
        now = self._clock()
        if now < self._retry_at:
            return False
        self._retry_at = now + REPLICA_RETRY_SECONDS  # this read tries; the others wait
        return True

    def _lost(self, error: DependencyUnavailable) -> None:
        self._retry_at = self._clock() + REPLICA_RETRY_SECONDS
        if self._down:
            return
        self._down = True
        failure = explain_connect_failure(
            error, self._replica.target, self._replica.acquire_timeout
        )
        cause = failure.reason if failure else f"{type(error.__cause__).__name__}"
        log.warning("read replica unavailable, reads go to the primary: %s", cause)

    def _answered(self) -> None:
        if self._down:
            self._down = False
            log.info("read replica at %s answers again; reads go to it", self._replica.target)


class PrimaryPosition:
    """The primary's WAL insert position, read after the caller asked for it.

    One statement serves every caller that asked before it started: a caller arriving while
    one runs waits for the next, which all such callers share.
    """

    def __init__(self, primary: Database) -> None:
        self._primary = primary
        self._running: asyncio.Task[int] | None = None
        self._next: asyncio.Task[int] | None = None

    async def now(self) -> int:
        if self._next is None:
            self._next = asyncio.ensure_future(self._read_after(self._running))
            self._next.add_done_callback(_retrieve)
        # Shielded: a caller giving up (its deadline) must not cancel the others' answer.
        return await asyncio.shield(self._next)

    async def _read_after(self, previous: asyncio.Task[int] | None) -> int:
        if previous is not None:
            await asyncio.wait([previous])
        self._running, self._next = self._next, None
        async with self._primary.connection() as conn:
            position: int = await conn.fetchval(PRIMARY_POSITION)
        return position


def _retrieve(task: asyncio.Task[int]) -> None:
    # Every waiter may have given up; the failure is theirs to report, not the loop's.
    if not task.cancelled():
        task.exception()
