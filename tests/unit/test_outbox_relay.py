"""The outbox relay with fakes: bounded publish attempts, one WARNING per stall, INFO at resume."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from post_service.config import OutboxSettings
from post_service.entrypoints.kafka.relay import OutboxRelay
from post_service.messaging import OutboundMessage, PublishFailed
from post_service.telemetry.metrics import Metrics
from tests.unit.fakes import FakeOutbox


class HangingThenWorkingPublisher:
    """Never acknowledges (a broker that accepts connections but does not answer) until healed."""

    def __init__(self) -> None:
        self.healed = asyncio.Event()
        self.attempts = 0
        self.published: list[bytes] = []

    async def start(self) -> None:
        pass

    async def publish(self, topic: str, messages: Sequence[OutboundMessage]) -> None:
        self.attempts += 1
        await self.healed.wait()
        self.published += [message.value for message in messages]


async def eventually(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


def relay_for(outbox: FakeOutbox, publisher: HangingThenWorkingPublisher) -> OutboxRelay:
    return OutboxRelay(
        outbox,
        publisher,
        "post_events",
        OutboxSettings(poll_interval_seconds=0.01, batch_size=10),
        Metrics(),
        retry_max_seconds=0.01,
        publish_timeout_seconds=0.05,
    )


async def test_a_publish_that_is_never_acknowledged_gives_up_within_its_bound() -> None:
    outbox = FakeOutbox([b"e1", b"e2"])
    relay = relay_for(outbox, HangingThenWorkingPublisher())
    with pytest.raises(PublishFailed, match=r"no acknowledgement from Kafka within 0\.05 s"):
        await relay.relay_once()
    assert outbox.sent == [], "nothing is marked sent without an acknowledgement"
    assert len(outbox.pending) == 2


async def test_a_stall_is_logged_once_and_its_end_once_and_every_event_goes_out_in_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="post_service")
    outbox = FakeOutbox([b"e1", b"e2", b"e3"])
    publisher = HangingThenWorkingPublisher()
    relaying = asyncio.create_task(relay_for(outbox, publisher).run())
    try:
        await eventually(lambda: publisher.attempts >= 4)  # fail while Kafka does not answer
        publisher.healed.set()
        await eventually(lambda: not outbox.pending)
    finally:
        relaying.cancel()
        with pytest.raises(asyncio.CancelledError):
            await relaying
    assert publisher.published == [b"e1", b"e2", b"e3"]
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    stalls = [m for level, m in said if level == "WARNING" and "stalled" in m]
    resumes = [m for level, m in said if level == "INFO" and m == "publishing post events resumed"]
    assert len(stalls) == 1, said
    assert "no acknowledgement from Kafka within 0.05 s" in stalls[0]
    assert len(resumes) == 1, said
