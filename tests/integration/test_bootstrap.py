"""The bootstrap's own start-up behaviour, on the session's PostgreSQL."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from post_service.bootstrap import build_app
from post_service.config import DatabaseSettings, GrpcSettings, MetricsSettings, Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def unfrozen_heap() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # leave the test process as it was


@pytest.mark.usefixtures("unfrozen_heap")
async def test_start_freezes_the_start_up_heap_out_of_the_garbage_collector(db_url: str) -> None:
    settings = Settings(
        db=DatabaseSettings(url=db_url),
        grpc=GrpcSettings(host="127.0.0.1", port=0),
        metrics=MetricsSettings(host="127.0.0.1", port=0),
    )
    app = build_app(settings)
    assert gc.get_freeze_count() == 0
    await app.start()
    try:
        # Everything alive after start-up is out of reach of full collections, which
        # otherwise stalled every request in flight for 40-46 ms (docs/benchmarks.md).
        assert gc.get_freeze_count() > 10_000
    finally:
        await app.stop()
