"""DB_READ_URL's settings, and how ReadReplica chooses between the replica and the primary,
on fake pools (the real standby: tests/reliability/test_read_replica.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from post_service.adapters.postgres.errors import DatabaseTarget
from post_service.adapters.postgres.replica import (
    PRIMARY_POSITION,
    REPLICA_RETRY_SECONDS,
    ReadReplica,
)
from post_service.config import DatabaseSettings, InvalidSettings, load_settings
from post_service.domain.errors import DependencyUnavailable

PASSWORD = "pw-91c2"  # made up, and looked for in every message
PRIMARY = f"postgresql+asyncpg://post:{PASSWORD}@db-rw:5432/post_db"


def test_db_read_url_is_optional_and_empty_means_unset() -> None:
    assert DatabaseSettings(url=PRIMARY).read_url is None
    assert DatabaseSettings(url=PRIMARY, read_url="").read_url is None


def test_db_read_url_may_list_several_standbys_without_read_write() -> None:
    replicas = (
        f"postgresql+asyncpg://post:{PASSWORD}@/post_db"
        "?host=db-2:5432&host=db-3:5432&target_session_attrs=prefer-standby"
    )
    settings = DatabaseSettings(url=PRIMARY, read_url=replicas)
    assert settings.read_url is not None
    assert settings.read_url.get_secret_value() == replicas


def test_a_bad_db_read_url_is_named_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_URL", PRIMARY)
    monkeypatch.setenv("DB_READ_URL", f"postgresql://post:{PASSWORD}@db-ro:5432/post_db")
    with pytest.raises(InvalidSettings) as raised:
        load_settings()
    problems = "\n".join(raised.value.problems)
    assert "DB_READ_URL must start with postgresql+asyncpg://" in problems
    assert PASSWORD not in problems


class FakeConnection:
    def __init__(self, position: int, gate: asyncio.Event | None = None) -> None:
        self.position = position
        self.gate = gate
        self.statements: list[str] = []

    async def fetchval(self, sql: str) -> int:
        self.statements.append(sql)
        if self.gate is not None:
            await self.gate.wait()
        return self.position


class FakeDatabase:
    """Database's interface: a connection, or DependencyUnavailable while ``down``."""

    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn
        self.down = False
        self.connections = 0
        self.target = DatabaseTarget(hosts=(("db-ro", 5432),), database="post_db", role="post")
        self.acquire_timeout = 2.0

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[FakeConnection]:
        self.connections += 1
        if self.down:
            raise DependencyUnavailable("database") from ConnectionRefusedError()
        yield self.conn


def route(
    primary: FakeDatabase, replica: FakeDatabase, clock: list[float]
) -> tuple[ReadReplica, list[str]]:
    fallbacks: list[str] = []
    # ReadReplica is typed with the concrete Database (src has no Protocol for it yet);
    # FakeDatabase has the part of its interface that ReadReplica uses.
    reads = ReadReplica(primary, replica, fallbacks.append, clock=lambda: clock[0])  # type: ignore[arg-type]
    return reads, fallbacks


async def server_of(conn: FakeConnection) -> str:
    return "replica" if conn.position == 200 else "primary"


async def test_a_post_by_id_is_read_on_the_replica_only_once_it_has_replayed_the_primary() -> None:
    primary, replica = FakeDatabase(FakeConnection(100)), FakeDatabase(FakeConnection(200))
    reads, fallbacks = route(primary, replica, [0.0])
    assert await reads.fresh(server_of) == "replica"  # replayed 200 >= written 100

    primary.conn.position = 300  # the primary wrote more than the replica replayed
    assert await reads.fresh(server_of) == "primary"
    assert await reads.listing(server_of) == "replica"  # listings do not wait for it
    assert fallbacks == ["lagging"]


async def test_reads_arriving_while_the_primary_position_is_read_share_the_next_reading() -> None:
    gate = asyncio.Event()
    primary, replica = FakeDatabase(FakeConnection(100, gate)), FakeDatabase(FakeConnection(200))
    reads, _ = route(primary, replica, [0.0])
    first = asyncio.ensure_future(reads.fresh(server_of))
    await asyncio.sleep(0)  # the first reading is under way...
    later = [asyncio.ensure_future(reads.fresh(server_of)) for _ in range(20)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(first, *later) == ["replica"] * 21
    # ...so the 20 that came during it could not use it: they share one more reading.
    assert primary.conn.statements == [PRIMARY_POSITION, PRIMARY_POSITION]


async def test_a_lost_replica_is_logged_once_and_tried_again_after_a_pause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = [0.0]
    primary, replica = FakeDatabase(FakeConnection(100)), FakeDatabase(FakeConnection(200))
    reads, fallbacks = route(primary, replica, clock)
    replica.down = True
    with caplog.at_level(logging.INFO, logger="post_service.adapters.postgres.replica"):
        for _ in range(10):
            assert await reads.listing(server_of) == "primary"
        assert replica.connections == 1  # left alone after the first failure
        clock[0] += REPLICA_RETRY_SECONDS
        replica.down = False
        assert await reads.fresh(server_of) == "replica"
    assert fallbacks == ["unavailable"] * 10
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "read replica unavailable, reads go to the primary: connection refused by db-ro:5432",
        "read replica at db-ro:5432 answers again; reads go to it",
    ]
