"""What a benchmark run found, as dataclasses.

``as_dict()`` gives the JSON of bench-results/<timestamp>.json and docs/benchmarks.json
(schema 1), which bench/report.py renders: keys in the same order, optional parts left out
when they were not measured.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench import system
from bench.load import LoadResult
from bench.profile import ProfileSummary

# Field metadata: FLAT merges the field's own keys into its owner's; OPTIONAL leaves out None.
FLAT = {"flat": True}
OPTIONAL = {"optional": True}


def as_json(value: Any) -> Any:
    """A dataclass as its JSON dict, recursively; anything else as it is."""
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if dataclasses.is_dataclass(value):
        return _fields(value)
    if isinstance(value, list):
        return [as_json(item) for item in value]
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    return value


def _fields(instance: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in dataclasses.fields(instance):
        value = getattr(instance, spec.name)
        if spec.metadata.get("flat"):
            out.update(as_json(value))
        elif value is not None or not spec.metadata.get("optional"):
            out[spec.name] = as_json(value)
    return out


@dataclass(frozen=True)
class Started:
    """When and how a run started, and on what: the head of every results file."""

    date: str
    command: str
    machine: dict[str, object]
    load_at_start: LoadAtStart

    @classmethod
    def now(cls, at: datetime, command: str) -> Started:
        return cls(
            date=at.isoformat(timespec="seconds"),
            command=command,
            machine=system.machine(),
            load_at_start=LoadAtStart(system.uptime_line(), system.load_average()),
        )


@dataclass(frozen=True)
class LoadAtStart:
    uptime: str
    loadavg: tuple[float, float, float]


@dataclass(frozen=True)
class HalfLoad:
    """A read repeated at a constant arrival rate of half its throughput."""

    rate: int
    load: LoadResult = field(metadata=FLAT)


@dataclass(frozen=True)
class Run:
    """One measured window: one server, one scenario, one concurrency."""

    server: str  # "service" or "ceiling"
    scenario: str
    rpc: str
    concurrency: int
    load: LoadResult = field(metadata=FLAT)
    warmup_errors: int
    server_cpu_seconds: float
    server_cpu_ms_per_request: float | None
    server_core_busy: float | None
    db_cpu_ms_per_request: float | None
    cpu_busy: dict[str, float]
    cpu_steal: dict[str, float]
    server_core_other: float | None
    load_bound: bool
    loadavg_before: tuple[float, float, float]
    rss_mib_after_warmup: float | None
    rss_mib_after: float
    half_load: HalfLoad | None = field(default=None, metadata=OPTIONAL)


class _Checked:
    """A result row that passes when every one of its ``checks`` holds."""

    checks: dict[str, bool]

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    def as_dict(self) -> dict[str, Any]:
        return {**_fields(self), "pass": self.passed}


@dataclass(frozen=True)
class CeilingRow(_Checked):
    """A post.Post scenario of the service against the ceiling at the same concurrency."""

    run: Run = field(metadata=FLAT)
    description: str
    ceiling_rps: float | None
    ratio: float | None
    target_ratio: float
    checks: dict[str, bool]


@dataclass(frozen=True)
class V2Row(_Checked):
    """A post.v2 scenario, next to its v1 counterpart from the same run and concurrency."""

    run: Run = field(metadata=FLAT)
    api: str
    description: str
    baseline: str | None
    baseline_run: Run | None
    ratio: float | None
    checks: dict[str, bool]


Row = CeilingRow | V2Row


@dataclass(frozen=True)
class ServiceMemory:
    after_start: float
    after_warmup: float | None
    after_run: float


@dataclass(frozen=True)
class ServiceFigures:
    startup_seconds: float
    rss_mib: ServiceMemory
    shutdown_seconds: float | None


@dataclass(frozen=True)
class CeilingMemory:
    after_run: float


@dataclass(frozen=True)
class CeilingFigures:
    startup_seconds: float
    rss_mib: CeilingMemory


@dataclass(frozen=True)
class Settings:
    duration: float
    warmup: float
    concurrency: list[int]
    scenarios: list[str]
    kafka: str
    server_cpu: int
    load_cpu: int
    event_loop: str


@dataclass(frozen=True)
class DataSetFigures:
    posts: int
    authors: int
    posts_per_author: int
    body_chars: str
    seed_seconds: float


@dataclass(frozen=True)
class Outbox:
    total: int
    pending: int
    sent: int


@dataclass(frozen=True)
class ProfiledScenario:
    rps: float | None
    summary: ProfileSummary


@dataclass(frozen=True)
class ProfileFigures:
    py_spy: str
    rate: int
    seconds: float
    concurrency: int
    raw_dir: str
    scenarios: dict[str, ProfiledScenario]


@dataclass(frozen=True)
class LoadAtEnd:
    loadavg: tuple[float, float, float]


@dataclass(frozen=True)
class Measured:
    """Everything measured while the stack was up."""

    started: Started = field(metadata=FLAT)
    versions: dict[str, str]
    settings: Settings
    dataset: DataSetFigures
    placement: dict[str, list[int]]
    profile: ProfileFigures | None = field(metadata=OPTIONAL)
    service: ServiceFigures
    outbox: Outbox | None = field(metadata=OPTIONAL)
    ceiling: CeilingFigures | None = field(metadata=OPTIONAL)


@dataclass(frozen=True)
class Results:
    measured: Measured = field(metadata=FLAT)
    runs: list[Run]
    rows: list[Row]
    load_at_end: LoadAtEnd  # once the stack is down
    warnings: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"schema": 1, **_fields(self)}


@dataclass(frozen=True)
class LongRun:
    """``--long N``: N GetByIdPost requests and the server's resident memory along the way."""

    requests: int
    concurrency: int
    seconds: float
    rps: float
    p99_ms: float
    errors: int
    status_codes: dict[str, int]
    rss_before_mib: float
    rss_after_mib: float
    rss_series_mib: list[tuple[float, float]]
    started: Started = field(metadata=FLAT)
