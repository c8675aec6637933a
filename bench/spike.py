"""Where GetByIdUserPost's latency tail comes from: one long window, sliced by second.

    .venv/bin/python -m bench.spike [--seconds 75] [--rate 0]

On the benchmark's 100,000-post data set (bench.dataset, loaded with SQL), a fresh
``post-service serve`` under bench/gc_probe.py takes GetByIdUserPost at c=16 for longer than
the username cache's TTL (60 s), twice: with USER_SERVICE_CACHE_TTL_SECONDS at its default
and at one hour. ghz's per-request details give p99 per one-second slice; the collector log
gives the longest pause per slice; /proc gives the load CPU's busy share. A spike from cache
expiry shows about 60 s after the first fill and only with the default TTL; a collector
pause shows as a pause as long as the spike in the same slice; a saturated load CPU
(ghz, PostgreSQL and the stand-in share it) shows as a tail spread over every slice.
Prints one JSON document; writes nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import system
from bench.dataset import DataSet
from bench.load import SCENARIOS, ghz_command
from bench.scale import gc_pauses
from bench.stack import _started, stand_up, stop_timed
from bench.system import LOAD_CPU, SERVER_CPU
from devenv.gotools import ensure_go_tool
from devenv.grpc_process import ROOT
from devenv.post_service_process import PostServiceProcess, run_cli


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def window(ghz: Path, addr: str, seconds: float, rate: int | None) -> dict[str, Any]:
    scenario = next(s for s in SCENARIOS if s.key == "GetByIdUserPost")
    command = ghz_command(
        ghz, addr, scenario.rpc, 16, data=scenario.data, duration_seconds=seconds,
        rate=rate, cpu=LOAD_CPU,
    )  # fmt: skip
    cores_before = system.CoreTimes.now()
    began = time.time()
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120, check=True
    )
    busy = system.CoreTimes.now().busy_since(cores_before)
    report = json.loads(result.stdout)
    details = report.get("details") or []
    return {"began": began, "ended": time.time(), "details": details, "busy": busy}


def slices(measured: dict[str, Any], gc_log: Path) -> list[dict[str, Any]]:
    by_second: dict[int, list[float]] = {}
    for detail in measured["details"]:
        # RFC 3339 with nanoseconds; seconds since the window began are enough here.
        at = _epoch(detail["timestamp"]) - measured["began"]
        by_second.setdefault(int(at), []).append(detail["latency"] / 1e6)
    out = []
    for second, latencies in sorted(by_second.items()):
        start = measured["began"] + second
        pauses = gc_pauses(gc_log, start, start + 1)
        out.append(
            {
                "s": second,
                "requests": len(latencies),
                "p50_ms": round(_percentile(latencies, 0.5), 1),
                "p99_ms": round(_percentile(latencies, 0.99), 1),
                "max_ms": round(max(latencies), 1),
                "gc_max_ms": pauses["max_ms"],
            }
        )
    return out


def _epoch(stamp: str) -> float:
    head, _, rest = stamp.partition(".")
    digits = len(rest) - len(rest.lstrip("0123456789"))
    fraction, zone = rest[:digits], rest[digits:]
    parsed = datetime.fromisoformat(head + zone.replace("Z", "+00:00"))
    return parsed.timestamp() + float("0." + (fraction or "0"))


def run(args: argparse.Namespace) -> dict[str, Any]:
    os.sched_setaffinity(0, {LOAD_CPU})
    ghz = ensure_go_tool("ghz")
    found: dict[str, Any] = {"seconds": args.seconds, "rate": args.rate or None, "runs": []}
    with contextlib.ExitStack() as exits:
        stack = stand_up(exits, False, "uvloop")
        if run_cli("migrate", env=stack.env, timeout=180).returncode != 0:
            raise RuntimeError("migrate failed")
        stack.postgres.psql(DataSet().seed_sql())
        stack.postgres.psql("VACUUM (ANALYZE) posts")
        for ttl in ("60", "3600"):
            gc_log = stack.workdir / f"gc-ttl{ttl}.log"
            prefix = ["taskset", "-c", str(SERVER_CPU), sys.executable, "-m",
                      "bench.gc_probe", str(gc_log)]  # fmt: skip
            env = stack.env | {"USER_SERVICE_CACHE_TTL_SECONDS": ttl}
            with contextlib.ExitStack() as service_exits:
                service = _started(
                    service_exits,
                    PostServiceProcess(env, stack.workdir / f"service-{ttl}.log", prefix),
                )
                print(f"TTL {ttl} s: {args.seconds:g} s of GetByIdUserPost", file=sys.stderr)
                measured = window(ghz, service.addr, args.seconds, args.rate or None)
                stop_timed(service)
            every = [d["latency"] / 1e6 for d in measured["details"]]
            found["runs"].append(
                {
                    "ttl_seconds": int(ttl),
                    "requests": len(every),
                    "p50_ms": round(_percentile(every, 0.5), 1),
                    "p99_ms": round(_percentile(every, 0.99), 1),
                    "max_ms": round(max(every, default=0.0), 1),
                    "cores_busy": {str(k): round(v, 3) for k, v in measured["busy"].items()},
                    "gc": gc_pauses(gc_log, measured["began"], measured["ended"]),
                    "slices": slices(measured, gc_log),
                }
            )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.spike", description=__doc__)
    parser.add_argument("--seconds", type=float, default=75.0)
    parser.add_argument("--rate", type=int, default=0, help="constant req/s (0: closed loop)")
    sys.stdout.write(json.dumps(run(parser.parse_args()), indent=1) + "\n")


if __name__ == "__main__":
    main()
