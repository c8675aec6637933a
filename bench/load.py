"""The scenarios and the load generator (ghz): its command lines and what its JSON report says."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bench.dataset import AUTHORS, POSTS, create_template
from scripts.generate_protos import protoc_include

PROTO = Path("proto/post/post.proto")  # relative to the repository root (ghz's working dir)
SERVICE = "post.Post"
V2_PROTO = Path("proto/post/v2/post.proto")
V2_SERVICE = "post.v2.PostService"
REQUEST_TIMEOUT = "10s"


@dataclass(frozen=True)
class Scenario:
    """One RPC with one kind of request; ``data`` is ghz call data (JSON, may be templated)."""

    key: str
    rpc: str
    description: str
    kind: Literal["read", "write"]
    min_ceiling_ratio: float
    data: str | None = None  # inline call data; None = ``data_file`` supplied by the harness
    service: str = SERVICE
    proto: Path = PROTO
    # post.v2: the v1 scenario (key) it must be at least as fast as; None = no comparison.
    baseline: str | None = None

    @property
    def is_v1(self) -> bool:
        return self.service == SERVICE

    @property
    def max_p99_ms_at_16(self) -> float | None:
        return 15.0 if self.kind == "read" else None


# Integers go in quoted templates: ghz checks that -d is JSON before templating, and
# protobuf's JSON mapping accepts "123" for an int32. randomInt's upper bound is exclusive.
SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "GetByIdPost",
        "GetByIdPost",
        f"random existing id in 1..{POSTS}",
        "read",
        0.50,
        f'{{"post_id": "{{{{randomInt 1 {POSTS + 1}}}}}"}}',
    ),
    Scenario(
        "GetGroupPost:first",
        "GetGroupPost",
        "limit 20, first page (newest posts)",
        "read",
        0.35,
        '{"limit": 20, "last_id": 0}',
    ),
    Scenario(
        "GetGroupPost:deep",
        "GetGroupPost",
        "limit 20, last_id random in 900..1099 (a page deep in the table)",
        "read",
        0.35,
        '{"limit": 20, "last_id": "{{randomInt 900 1100}}"}',
    ),
    Scenario(
        "GetByIdUserPost",
        "GetByIdUserPost",
        f"username user-<random 1..{AUTHORS}> (100 posts each; resolved by the stand-in)",
        "read",
        0.35,
        f'{{"username": "user-{{{{randomInt 1 {AUTHORS + 1}}}}}"}}',
    ),
    Scenario(
        "CreatePost",
        "CreatePost",
        "random author, 400-character body",
        "write",
        0.30,
        create_template(),
    ),
    Scenario(
        "PutPost",
        "PutPost",
        "an author edits one of its own posts (5,000 random pairs, round robin)",
        "write",
        0.30,
    ),
    # post.v2 beside v1, on the same data and process (no ceiling: it serves post.Post only).
    Scenario(
        "GetPost",
        "GetPost",
        f"post.v2: random existing id in 1..{POSTS}",
        "read",
        0.0,
        f'{{"id": "{{{{randomInt 1 {POSTS + 1}}}}}"}}',
        service=V2_SERVICE,
        proto=V2_PROTO,
        baseline="GetByIdPost",
    ),
    Scenario(
        "ListPosts:first",
        "ListPosts",
        "post.v2: page_size 20, first page (newest posts)",
        "read",
        0.0,
        '{"page_size": 20}',
        service=V2_SERVICE,
        proto=V2_PROTO,
        baseline="GetGroupPost:first",
    ),
    Scenario(
        "SearchPosts",
        "SearchPosts",
        "post.v2: 'topic <random 0..210>', page_size 20 (about 470 matches ranked per query)",
        "read",
        0.0,
        '{"query": "topic {{randomInt 0 211}}", "page_size": 20}',
        service=V2_SERVICE,
        proto=V2_PROTO,
    ),
)
SCENARIO_KEYS = tuple(s.key for s in SCENARIOS)


def select_scenarios(spec: str) -> list[Scenario]:
    """``"GetByIdPost,PutPost"``; an RPC name selects all its scenarios (both GetGroupPost)."""
    wanted = [part.strip() for part in spec.split(",") if part.strip()]
    chosen: list[Scenario] = []
    for name in wanted:
        matches = [s for s in SCENARIOS if name in (s.key, s.rpc)]
        if not matches:
            raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIO_KEYS)}")
        chosen += [s for s in matches if s not in chosen]
    return [s for s in SCENARIOS if s in chosen]  # always in the canonical order


@dataclass(frozen=True)
class LoadResult:
    count: int
    seconds: float
    rps: float
    average_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    slowest_ms: float
    errors: int
    status_codes: dict[str, int]
    error_samples: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def ghz_command(
    ghz: Path,
    target: str,
    rpc: str,
    concurrency: int,
    *,
    service: str = SERVICE,
    proto: Path = PROTO,
    data: str | None = None,
    data_file: Path | None = None,
    duration_seconds: float | None = None,
    total: int | None = None,
    rate: int | None = None,
    cpu: int = 1,
) -> list[str]:
    """The ghz command, pinned to ``cpu`` with taskset and told to use one core."""
    command = [
        "taskset", "-c", str(cpu), str(ghz),
        "--insecure", "--proto", str(proto), "--import-paths", str(protoc_include()),
        "--call", f"{service}/{rpc}",
        "-c", str(concurrency), "--connections", "1", "--cpus", "1",
        "-t", REQUEST_TIMEOUT, "-O", "json",
    ]  # fmt: skip
    if data is not None:
        command += ["-d", data]
    elif data_file is not None:
        command += ["-D", str(data_file)]
    if rate is not None:
        command += ["--rps", str(rate)]  # a constant arrival rate instead of as-fast-as-possible
    if duration_seconds is not None:
        # "wait": requests in flight at the deadline finish and are counted, none is cut off.
        command += ["-z", f"{duration_seconds:g}s", "--duration-stop", "wait"]
    elif total is not None:
        command += ["-n", str(total)]  # bounded by the caller's subprocess timeout
    return [*command, target]


def run_ghz(command: list[str], cwd: Path, timeout: float) -> LoadResult:
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if not result.stdout.strip().startswith("{"):
        raise RuntimeError(f"ghz failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return parse_report(json.loads(result.stdout))


def parse_report(report: dict[str, Any]) -> LoadResult:
    """ghz's JSON (-O json): durations are nanoseconds; errors are every non-OK status."""
    percentiles = {
        int(entry["percentage"]): entry["latency"] / 1e6
        for entry in report.get("latencyDistribution") or []
    }
    codes: dict[str, int] = dict(report.get("statusCodeDistribution") or {})
    count = int(report["count"])
    errors = sum(n for code, n in codes.items() if code != "OK")
    if not codes and report.get("errorDistribution"):
        errors = sum(report["errorDistribution"].values())
    return LoadResult(
        count=count,
        seconds=report["total"] / 1e9,
        rps=float(report["rps"]),
        average_ms=report["average"] / 1e6,
        p50_ms=percentiles.get(50, float("nan")),
        p95_ms=percentiles.get(95, float("nan")),
        p99_ms=percentiles.get(99, float("nan")),
        slowest_ms=report["slowest"] / 1e6,
        errors=errors,
        status_codes=codes,
        error_samples=dict(report.get("errorDistribution") or {}),
    )
