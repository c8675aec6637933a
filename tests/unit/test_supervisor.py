"""Background workers are restarted after an unexpected error, counted and logged."""

from __future__ import annotations

import asyncio

import pytest

from post_service.entrypoints.supervisor import Supervisor
from post_service.telemetry.metrics import Metrics


def restarts(metrics: Metrics, worker: str) -> float:
    value = metrics.registry.get_sample_value(
        "post_service_worker_restarts_total", {"worker": worker}
    )
    assert value is not None, "the series exists from the start"
    return value


async def test_a_failing_worker_is_restarted_counted_and_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    runs = 0
    recovered = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise RuntimeError(f"bug number {runs}")
        recovered.set()
        await asyncio.Event().wait()  # then runs until stopped

    supervisor = Supervisor(metrics, backoff_max_seconds=0.01)
    supervisor.start({"relay": flaky})
    await asyncio.wait_for(recovered.wait(), timeout=5)
    await supervisor.stop()

    assert runs == 3
    assert restarts(metrics, "relay") == 2
    failures = [r for r in caplog.records if r.getMessage() == "worker failed, restarting"]
    assert [r.exc_info[1].args[0] for r in failures if r.exc_info and r.exc_info[1]] == [
        "bug number 1",
        "bug number 2",
    ]
    assert all(getattr(r, "worker", None) == "relay" for r in failures)


async def test_stop_never_raises_what_a_worker_raised() -> None:
    metrics = Metrics()

    async def always_failing() -> None:
        raise ValueError("broken for good")

    supervisor = Supervisor(metrics, backoff_max_seconds=0.01)
    supervisor.start({"watcher": always_failing})
    await asyncio.sleep(0.1)
    await supervisor.stop()  # no exception
    assert restarts(metrics, "watcher") >= 2


async def test_a_healthy_worker_has_a_zero_series_and_is_cancelled_on_stop() -> None:
    metrics = Metrics()
    cancelled = asyncio.Event()

    async def healthy() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    supervisor = Supervisor(metrics)
    supervisor.start({"consumer": healthy})
    await asyncio.sleep(0)
    await supervisor.stop()
    assert cancelled.is_set()
    assert restarts(metrics, "consumer") == 0
