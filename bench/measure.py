"""Measuring: one server under one scenario at one concurrency, with what it cost in CPU.

Each measured ghz run is bracketed by readings from /proc: the server's CPU time and resident
memory, the CPU time of PostgreSQL (the postmaster and its backends), and every core's busy
and stolen time. Warnings name runs whose figures something else disturbed.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import system
from bench.load import SCENARIOS, LoadResult, Scenario, ghz_command, run_ghz
from bench.progress import log
from bench.results import HalfLoad, LongRun, Run, Started
from bench.system import LOAD_CPU, SERVER_CPU
from devenv.grpc_process import ROOT, GrpcProcess

GHZ_SLACK_SECONDS = 120  # beyond a run's own duration before ghz counts as hung


@dataclass(frozen=True)
class Window:
    """What one measured ghz run read around it."""

    load: LoadResult
    cpu: float  # the server's CPU seconds
    db_cpu: float  # PostgreSQL's
    busy: dict[int, float]  # per core, the share of the window it was busy
    steal: dict[int, float]  # per core, the share the hypervisor stole
    loadavg_before: tuple[float, float, float]

    def server_core_busy(self) -> float | None:
        return self.cpu / self.load.seconds if self.load.seconds else None


@dataclass
class Measurer:
    ghz: Path
    put_file: Path  # PutPost call data (author, post) pairs
    db_pid: int  # the postmaster
    warmup: float
    duration: float
    half_load_at: int | None  # the concurrency at which reads get a half-load pass
    runs: list[Run] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def ghz_for(
        self,
        server: GrpcProcess,
        scenario: Scenario,
        concurrency: int,
        seconds: float | None = None,
        total: int | None = None,
        rate: int | None = None,
    ) -> list[str]:
        return ghz_command(
            self.ghz, server.addr, scenario.rpc, concurrency,
            service=scenario.service, proto=scenario.proto,
            data=scenario.data, data_file=None if scenario.data else self.put_file,
            duration_seconds=seconds, total=total, rate=rate, cpu=LOAD_CPU,
        )  # fmt: skip

    def load(
        self, server: GrpcProcess, scenario: Scenario, concurrency: int, seconds: float
    ) -> LoadResult:
        command = self.ghz_for(server, scenario, concurrency, seconds)
        return run_ghz(command, ROOT, seconds + GHZ_SLACK_SECONDS)

    def measure(self, name: str, server: GrpcProcess, scenario: Scenario, concurrency: int) -> Run:
        """Warm-up, then the measured window, and for reads perhaps a half-load pass."""
        label = f"{name} {scenario.key} c={concurrency}"
        warmup_errors, rss_after_warmup = self._warm_up(label, server, scenario, concurrency)
        window = self._window(server, scenario, concurrency)
        run = _run(name, scenario, concurrency, window, warmup_errors, rss_after_warmup, server)
        if scenario.kind == "read" and name == "service" and concurrency == self.half_load_at:
            run = dataclasses.replace(run, half_load=self._half_load(label, server, scenario, run))
        self._report(label, run, window)
        self.runs.append(run)
        return run

    def _warm_up(
        self, label: str, server: GrpcProcess, scenario: Scenario, concurrency: int
    ) -> tuple[int, float | None]:
        if self.warmup <= 0:
            return 0, None
        log(f"{label}: warm-up {self.warmup:g}s")
        warm = self.load(server, scenario, concurrency, self.warmup)
        return warm.errors, round(system.rss_mib(server.pid), 1)

    def _window(self, server: GrpcProcess, scenario: Scenario, concurrency: int) -> Window:
        cores_before = system.CoreTimes.now()
        cpu_before = system.cpu_seconds(server.pid)
        db_before = system.tree_cpu_seconds(self.db_pid)
        loadavg_before = system.load_average()
        load = self.load(server, scenario, concurrency, self.duration)
        cpu = system.cpu_seconds(server.pid) - cpu_before
        db_cpu = system.tree_cpu_seconds(self.db_pid) - db_before
        cores_after = system.CoreTimes.now()
        busy = cores_after.busy_since(cores_before)
        steal = cores_after.steal_since(cores_before)
        return Window(load, cpu, db_cpu, busy, steal, loadavg_before)

    def _half_load(self, label: str, server: GrpcProcess, scenario: Scenario, run: Run) -> HalfLoad:
        # Closed-loop saturation makes latency = concurrency / throughput; at half the
        # throughput (a constant arrival rate) the latency is the service's own.
        rate = max(1, int(run.load.rps / 2))
        command = self.ghz_for(server, scenario, run.concurrency, self.duration, rate=rate)
        half = run_ghz(command, ROOT, self.duration + GHZ_SLACK_SECONDS)
        log(f"{label}: at {rate} req/s: p50 {half.p50_ms:.1f} ms, p99 {half.p99_ms:.1f} ms")
        return HalfLoad(rate, half)

    def _report(self, label: str, run: Run, window: Window) -> None:
        load = run.load
        log(
            f"{label}: {load.rps:,.0f} req/s, p50 {load.p50_ms:.1f} ms, "
            f"p99 {load.p99_ms:.1f} ms, errors {load.errors}, "
            f"server CPU {run.server_cpu_ms_per_request or 0:.2f} ms/req, "
            f"cores {run.cpu_busy}"
        )
        if (run.server_core_other or 0) > 0.15:
            self.warnings.append(
                f"{label}: {run.server_core_other:.0%} of the server's CPU went to other "
                "work (another process or softirq); its figures understate the server"
            )
        if window.steal.get(SERVER_CPU, 0.0) > 0.05:
            self.warnings.append(
                f"{label}: the hypervisor stole {window.steal[SERVER_CPU]:.0%} of the server's CPU"
            )
        if run.load_bound:
            self.warnings.append(
                f"{label}: the load CPU was saturated while the server's was not: this "
                "throughput is a lower bound (for a ceiling run, the ratio an upper bound)"
            )
        if load.errors or run.warmup_errors:
            log(f"{label}: errors {load.status_codes} {load.error_samples}")


def _run(
    name: str,
    scenario: Scenario,
    concurrency: int,
    window: Window,
    warmup_errors: int,
    rss_after_warmup: float | None,
    server: GrpcProcess,
) -> Run:
    load, cpu, busy = window.load, window.cpu, window.busy
    core_busy = window.server_core_busy()
    return Run(
        server=name,
        scenario=scenario.key,
        rpc=scenario.rpc,
        concurrency=concurrency,
        load=load,
        warmup_errors=warmup_errors,
        server_cpu_seconds=round(cpu, 3),
        server_cpu_ms_per_request=1000 * cpu / load.count if load.count else None,
        server_core_busy=core_busy,
        db_cpu_ms_per_request=(
            1000 * window.db_cpu / load.count if load.count and name == "service" else None
        ),
        cpu_busy={str(core): round(share, 3) for core, share in busy.items()},
        cpu_steal={str(core): round(share, 3) for core, share in window.steal.items()},
        # Busy time on the server's CPU that the server did not use: other processes
        # (unpinned ones, like a test run) and softirq work.
        server_core_other=(
            round(busy.get(SERVER_CPU, 0.0) - core_busy, 3) if core_busy is not None else None
        ),
        load_bound=busy.get(LOAD_CPU, 0.0) >= 0.95 and core_busy is not None and core_busy < 0.9,
        loadavg_before=window.loadavg_before,
        rss_mib_after_warmup=rss_after_warmup,
        rss_mib_after=round(system.rss_mib(server.pid), 1),
    )


def measure_memory(
    measurer: Measurer, server: GrpcProcess, total: int, concurrency: int, started: Started
) -> LongRun:
    """``--long``: ``total`` GetByIdPost requests, sampling the server's RSS every 5 s."""
    scenario = SCENARIOS[0]
    if measurer.warmup > 0:
        log(f"long run: warm-up {measurer.warmup:g}s")
        run_ghz(measurer.ghz_for(server, scenario, concurrency, measurer.warmup), ROOT, 300)
    before = system.rss_mib(server.pid)
    series = [(0.0, before)]
    log(f"long run: {total:,} GetByIdPost requests at c={concurrency}")
    command = measurer.ghz_for(server, scenario, concurrency, total=total)
    timeout = max(60, total // 100) + 120
    result = _sampling_rss(server.pid, series, lambda: run_ghz(command, ROOT, timeout))
    after = series[-1][1]
    log(f"long run: {result.rps:,.0f} req/s, RSS {before:.1f} -> {after:.1f} MiB")
    return LongRun(
        requests=result.count,
        concurrency=concurrency,
        seconds=result.seconds,
        rps=result.rps,
        p99_ms=result.p99_ms,
        errors=result.errors,
        status_codes=result.status_codes,
        rss_before_mib=round(before, 1),
        rss_after_mib=round(after, 1),
        rss_series_mib=[(t, round(m, 1)) for t, m in series],
        started=started,
    )


def _sampling_rss(
    pid: int, series: list[tuple[float, float]], work: Callable[[], LoadResult]
) -> LoadResult:
    """Runs ``work`` while appending (seconds, RSS MiB) to ``series`` every 5 s and at the end."""
    done = threading.Event()
    started = time.monotonic()

    def sample() -> None:
        while not done.wait(5):
            series.append((round(time.monotonic() - started, 1), system.rss_mib(pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        return work()
    finally:
        done.set()
        sampler.join()
        series.append((round(time.monotonic() - started, 1), system.rss_mib(pid)))
