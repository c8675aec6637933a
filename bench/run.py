"""`make bench`: Post Service under load on one core, next to the ceiling of Python gRPC.

    .venv/bin/python -m bench.run [--duration S] [--warmup S] [--concurrency 16,64]
                                  [--scenarios GetByIdPost,...] [--profile] [--long N]

What one run does, everything on 127.0.0.1 and stopping by itself:

1. Pins itself to the load CPU (1); what it starts inherits that: a throwaway PostgreSQL
   (devenv.postgres), a single-node Kafka (devenv.kafka; ``--no-kafka`` skips it) and the
   stand-in User-service (bench/user_stand_in.py, a separate grpc.aio process).
2. Migrates, then seeds 100,000 posts by 1,000 authors with one INSERT ... SELECT.
3. Starts the real ``post-service serve`` with ``taskset -c 0`` and times it to health SERVING.
4. For every scenario and concurrency: a warm-up, then a measured ghz run (pinned with
   ``taskset -c 1``, ``--cpus 1``); reads the server's CPU time and RSS from /proc around it.
5. Optionally (``--profile``) records py-spy profiles of GetByIdPost and GetGroupPost.
6. Stops the service, starts bench/ceiling_server.py on the same core and runs the same RPCs.
7. Writes bench-results/<timestamp>.json, docs/benchmarks.json and the tables in
   docs/benchmarks.md (``--no-docs`` writes only the first).

``--long N`` instead sends N GetByIdPost requests at the first concurrency and reports the
server's resident memory before and after (and every few seconds in between).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import system
from bench.compare import compare
from bench.dataset import DataSet
from bench.load import SCENARIO_KEYS, SCENARIOS, Scenario, select_scenarios
from bench.measure import Measurer, measure_memory
from bench.profile_under_load import profile_service
from bench.progress import log
from bench.publish import publish_long, publish_results
from bench.report import results_markdown
from bench.results import (
    CeilingFigures,
    CeilingMemory,
    DataSetFigures,
    LoadAtEnd,
    Measured,
    ProfileFigures,
    Results,
    ServiceFigures,
    ServiceMemory,
    Settings,
    Started,
)
from bench.stack import (
    Stack,
    outbox,
    placement,
    seed,
    stand_up,
    start_ceiling,
    start_service,
    stop_timed,
    versions,
)
from bench.system import LOAD_CPU, SERVER_CPU
from devenv.gotools import TOOLS, ensure_go_tool
from devenv.grpc_process import ROOT, GrpcProcess

PROFILE_SCENARIOS = "GetByIdPost,GetGroupPost:first"


def run(args: argparse.Namespace) -> int:
    started, stamp = _begin()
    out_dir = ROOT / args.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    ghz = ensure_go_tool("ghz")
    with contextlib.ExitStack() as exits:
        stack = stand_up(exits, args.kafka, args.event_loop)
        dataset = _seed(stack)
        found_versions = versions(stack, TOOLS["ghz"].version)
        half_load_at = min(args.concurrency) if args.half_load else None
        measurer = Measurer(
            ghz, stack.put_file, stack.postmaster_pid, args.warmup, args.duration, half_load_at
        )
        log("starting post-service")
        service = start_service(exits, stack)
        rss_after_start = round(system.rss_mib(service.pid), 1)
        where = placement(stack, service)
        log(f"post-service SERVING after {service.startup_seconds:.2f}s")
        if args.long:
            long = measure_memory(measurer, service, args.long, args.concurrency[0], started)
            stop_timed(service)
            publish_long(long, out_dir, stamp, args.docs)
            return 0
        service_figures, profile = _measure_service(
            args, measurer, service, rss_after_start, out_dir, stamp
        )
        wrote = any(s.kind == "write" for s in args.scenarios)
        outbox_figures = outbox(stack) if wrote else None
        ceiling = _measure_ceiling(args, measurer, exits, stack) if args.ceiling else None
    measured = Measured(
        started=started,
        versions=found_versions,
        settings=_settings(args, stack),
        dataset=dataset,
        placement=where,
        profile=profile,
        service=service_figures,
        outbox=outbox_figures,
        ceiling=ceiling,
    )
    return _finish(args, measured, measurer, out_dir, stamp)


def _begin() -> tuple[Started, str]:
    """Pins this process to the load CPU; when and how the run started, and its file stamp."""
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("bench needs at least 2 CPUs: one for the server, one for the load")
    # Everything this process starts inherits the load CPU; only the servers get CPU 0.
    os.sched_setaffinity(0, {LOAD_CPU})
    at = datetime.now(UTC)
    started = Started.now(at, _command_line())
    log(f"start: {started.load_at_start.uptime}")
    return started, at.strftime("%Y%m%dT%H%M%SZ")


def _seed(stack: Stack) -> DataSetFigures:
    data = DataSet()
    log(f"migrating and seeding {data.posts:,} posts")
    dataset = seed(stack, data)
    log(f"seeded in {dataset.seed_seconds:.1f}s")
    return dataset


def _finish(
    args: argparse.Namespace, measured: Measured, measurer: Measurer, out_dir: Path, stamp: str
) -> int:
    """Once the stack is down: the verdicts, the files, the table on stdout."""
    results = Results(
        measured=measured,
        runs=measurer.runs,
        rows=compare(measurer.runs, args.scenarios),
        load_at_end=LoadAtEnd(system.load_average()),
        warnings=measurer.warnings,
    )
    data = publish_results(results, out_dir, stamp, args.docs)
    sys.stdout.write(results_markdown(data) + "\n")
    failed = [row for row in results.rows if not row.passed]
    return 1 if failed and args.strict else 0


def _measure_service(
    args: argparse.Namespace,
    measurer: Measurer,
    service: GrpcProcess,
    rss_after_start: float,
    out_dir: Path,
    stamp: str,
) -> tuple[ServiceFigures, ProfileFigures | None]:
    for scenario in args.scenarios:
        for concurrency in args.concurrency:
            measurer.measure("service", service, scenario, concurrency)
    rss_after_run = round(system.rss_mib(service.pid), 1)
    profile = None
    if args.profile:
        profile = profile_service(
            measurer,
            service,
            select_scenarios(args.profile_scenarios),
            args.profile_seconds,
            out_dir,
            stamp,
        )
    memory = ServiceMemory(rss_after_start, measurer.runs[0].rss_mib_after_warmup, rss_after_run)
    figures = ServiceFigures(round(service.startup_seconds or 0, 3), memory, stop_timed(service))
    return figures, profile


def _measure_ceiling(
    args: argparse.Namespace, measurer: Measurer, exits: contextlib.ExitStack, stack: Stack
) -> CeilingFigures:
    """The same post.Post RPCs, once each, against bench/ceiling_server.py."""
    ceiling = start_ceiling(exits, stack, args.event_loop)
    seen: set[str] = set()
    for scenario in args.scenarios:
        if scenario.rpc in seen or not scenario.is_v1:
            continue
        seen.add(scenario.rpc)
        for concurrency in args.concurrency:
            measurer.measure("ceiling", ceiling, scenario, concurrency)
    memory = CeilingMemory(round(system.rss_mib(ceiling.pid), 1))
    stop_timed(ceiling)
    return CeilingFigures(round(ceiling.startup_seconds or 0, 3), memory)


def _settings(args: argparse.Namespace, stack: Stack) -> Settings:
    return Settings(
        duration=args.duration,
        warmup=args.warmup,
        concurrency=args.concurrency,
        scenarios=[s.key for s in args.scenarios],
        kafka=stack.kafka_servers,
        server_cpu=SERVER_CPU,
        load_cpu=LOAD_CPU,
        event_loop=args.event_loop,
    )


def _command_line() -> str:
    arguments = " " + shlex.join(sys.argv[1:]) if sys.argv[1:] else ""
    return ".venv/bin/python -m bench.run" + arguments


def _concurrency(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def _scenarios(text: str) -> list[Scenario]:
    try:
        return select_scenarios(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=15.0, help="measured s (15)")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up s per scenario (5)")
    parser.add_argument("--concurrency", type=_concurrency, default=[16, 64], help="16,64")
    parser.add_argument(
        "--scenarios",
        type=_scenarios,
        default=list(SCENARIOS),
        help=f"comma-separated, an RPC name selects all its scenarios ({','.join(SCENARIO_KEYS)})",
    )
    parser.add_argument(
        "--no-ceiling",
        dest="ceiling",
        action="store_false",
        help="skip the ceiling server (no ratios)",
    )
    parser.add_argument(
        "--no-kafka", dest="kafka", action="store_false", help="run the service without Kafka"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also record py-spy profiles (GetByIdPost, GetGroupPost, c=16)",
    )
    parser.add_argument("--profile-seconds", type=float, default=15.0)
    parser.add_argument("--profile-scenarios", default=PROFILE_SCENARIOS)
    parser.add_argument(
        "--long",
        type=int,
        default=0,
        metavar="N",
        help="only send N GetByIdPost requests and report RSS before/after",
    )
    parser.add_argument("--output-dir", default="bench-results")
    parser.add_argument(
        "--no-docs",
        dest="docs",
        action="store_false",
        help="do not update docs/benchmarks.md and docs/benchmarks.json",
    )
    parser.add_argument(
        "--no-half-load",
        dest="half_load",
        action="store_false",
        help="skip the reads' second pass at half their throughput (latency without queueing)",
    )
    parser.add_argument(
        "--event-loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="the event loop of the service (its EVENT_LOOP) and of the ceiling (uvloop)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
