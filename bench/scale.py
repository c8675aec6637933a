"""Cost as the data grows: the same requests at several table sizes, in one run.

    .venv/bin/python -m bench.scale [--sizes 200000,5000000] [--duration 8] [--warmup 3]
                                    [--concurrency 16] [--repeats 3] [--kafka]
                                    [--authors N] [--shared-buffers 6GB]

For every size, on one throwaway PostgreSQL: the posts table is emptied and loaded with SQL
(one ``INSERT ... SELECT`` over ``generate_series``, the secondary indexes dropped around it
and rebuilt, then ``VACUUM (ANALYZE)``), every step timed. Each size has ``size / 100``
authors with exactly 100 posts each (or ``--authors`` at every size), spread over the whole
table, so a by-author listing returns a full 100-post page at every size; GetByIdUserPost and
CreatePost name authors 1..1000 at every size (GetByIdPost's random posts have any author, so
with one author per 100 posts the username cache misses more at 5M). A fresh ``post-service serve``
(through bench/gc_probe.py, which times every collector pass) then takes the v1 reads and
CreatePost, each for a warm-up and a measured ghz window; GetByIdUserPost ``--repeats``
times, each window with the collector pauses that fell inside it. At the largest size every
request-path statement is run under ``EXPLAIN (ANALYZE, BUFFERS)`` (bench/plans.py).

Writes bench-results/scale-<timestamp>.json, docs/benchmarks-scale.json and the generated
"Data scale" block of docs/benchmarks.md (``--no-docs`` writes only the first).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report, system
from bench.dataset import AUTHOR_STRIDE, DataSet
from bench.load import Scenario, select_scenarios
from bench.measure import Measurer, Window
from bench.plans import explain_all
from bench.progress import log, shown
from bench.results import as_json
from bench.scale_report import SCALE_BEGIN, SCALE_END, scale_markdown
from bench.stack import Stack, _started, stand_up, stop_timed, versions
from bench.system import LOAD_CPU, SERVER_CPU
from devenv.gotools import TOOLS, ensure_go_tool
from devenv.grpc_process import ROOT, GrpcProcess
from devenv.post_service_process import PostServiceProcess, run_cli

POSTS_PER_AUTHOR = 100
QUERIED_AUTHORS = 1_000  # GetByIdUserPost and CreatePost pick among authors 1..this
SCENARIOS = "GetByIdPost,GetGroupPost,GetByIdUserPost,CreatePost"
DOC = ROOT / "docs" / "benchmarks.md"
DOC_JSON = ROOT / "docs" / "benchmarks-scale.json"
SECONDARY_INDEXES = ("ix_posts_author_id_id", "ix_posts_created_at", "ix_posts_search")
SPIKE_GC_MS = 5.0  # collector passes at least this long are listed with their window


@dataclass
class TimedMeasurer(Measurer):
    """A Measurer that also notes the wall-clock bounds of every measured window."""

    windows: list[tuple[float, float]] = field(default_factory=list)

    def _window(self, server: GrpcProcess, scenario: Scenario, concurrency: int) -> Window:
        began = time.time()
        window = super()._window(server, scenario, concurrency)
        self.windows.append((began, time.time()))
        return window


def sized(scenario: Scenario, posts: int) -> Scenario:
    """GetByIdPost over the ids of this size; the rest read the same at every size."""
    if scenario.key == "GetByIdPost":
        return dataclasses.replace(
            scenario,
            description=f"random existing id in 1..{posts}",
            data=f'{{"post_id": "{{{{randomInt 1 {posts + 1}}}}}"}}',
        )
    return scenario


def load(stack: Stack, posts: int, authors: int, prewarm: bool) -> dict[str, Any]:
    """Empties posts and loads ``posts`` rows with SQL; the seconds of every step."""
    data = DataSet(posts=posts, authors=authors)
    definitions = stack.postgres.psql(
        "SELECT string_agg(indexdef, ';') FROM pg_indexes WHERE tablename = 'posts' "
        "AND indexname IN ('ix_posts_author_id_id', 'ix_posts_created_at', 'ix_posts_search')"
    ).split(";")
    steps: dict[str, float] = {}

    def timed(step: str, sql: str) -> None:
        log(f"{posts:,} posts: {step}")
        began = time.monotonic()
        stack.postgres.psql(sql)
        steps[step] = round(time.monotonic() - began, 1)
        log(f"{posts:,} posts: {step} took {steps[step]:.1f}s")

    timed("drop secondary indexes", f"DROP INDEX {', '.join(SECONDARY_INDEXES)}")
    timed("insert (computes the search tsvector)", data.seed_sql())
    for definition in definitions:
        name = definition.split(" INDEX ", 1)[1].split()[0]
        timed(f"create {name}", f"SET maintenance_work_mem = '1GB'; {definition}")
    stack.postgres.psql("CHECKPOINT")
    timed("vacuum (analyze)", "VACUUM (ANALYZE) posts")
    if prewarm:  # bulk writes bypass shared_buffers: start the windows from a warm cache
        timed(
            "pg_prewarm",
            "CREATE EXTENSION IF NOT EXISTS pg_prewarm; SELECT pg_prewarm('posts'), "
            "pg_prewarm('pk_posts'), pg_prewarm('ix_posts_author_id_id')",
        )
    size = stack.postgres.psql("SELECT pg_size_pretty(pg_total_relation_size('posts'))")
    full = stack.postgres.psql(
        "SELECT count(*) FROM (SELECT author_id FROM posts WHERE author_id <= "  # noqa: S608
        f"{QUERIED_AUTHORS} GROUP BY author_id HAVING count(*) >= {POSTS_PER_AUTHOR}) AS a"
    )
    return {
        "posts": posts,
        "authors": data.authors,
        "posts_per_author": data.posts_per_author,
        "queried_authors_with_full_page": int(full),
        "steps_seconds": steps,
        "load_seconds": round(sum(steps.values()), 1),
        "posts_total_size": size,
    }


def gc_pauses(path: Path, began: float, ended: float) -> dict[str, Any]:
    """The collector passes of the service that fell inside [began, ended]."""
    passes = []
    if path.exists():
        for line in path.read_text().splitlines():
            at, generation, millis, _collected = line.split()
            if began <= float(at) <= ended:
                passes.append((float(at) - began, int(generation), float(millis)))
    by_gen = {g: [m for _, gen, m in passes if gen == g] for g in (0, 1, 2)}
    return {
        "passes": {str(g): len(ms) for g, ms in by_gen.items()},
        "total_ms": round(sum(m for _, _, m in passes), 1),
        "max_ms": round(max((m for _, _, m in passes), default=0.0), 1),
        "long": [
            {"at_s": round(t, 2), "generation": g, "ms": round(m, 1)}
            for t, g, m in passes
            if m >= SPIKE_GC_MS
        ],
    }


def measure_size(args: argparse.Namespace, stack: Stack, ghz: Path, posts: int) -> dict[str, Any]:
    with contextlib.ExitStack() as exits:
        gc_log = stack.workdir / f"gc-{posts}.log"
        prefix = ["taskset", "-c", str(SERVER_CPU), sys.executable, "-m", "bench.gc_probe",
                  str(gc_log)]  # fmt: skip
        service = _started(
            exits, PostServiceProcess(stack.env, stack.workdir / f"service-{posts}.log", prefix)
        )
        log(f"{posts:,} posts: post-service SERVING after {service.startup_seconds:.2f}s")
        measurer = TimedMeasurer(
            ghz, stack.put_file, stack.postmaster_pid, args.warmup, args.duration, None
        )
        rows = []
        for scenario in args.scenarios:
            repeats = args.repeats if scenario.key == "GetByIdUserPost" else 1
            for concurrency in args.concurrency:
                for attempt in range(1, repeats + 1):
                    run = measurer.measure("service", service, sized(scenario, posts), concurrency)
                    began, ended = measurer.windows[-1]
                    rows.append(
                        {
                            "scenario": scenario.key,
                            "attempt": attempt,
                            "concurrency": concurrency,
                            "rps": round(run.load.rps, 1),
                            "p50_ms": round(run.load.p50_ms, 2),
                            "p99_ms": round(run.load.p99_ms, 2),
                            "slowest_ms": round(run.load.slowest_ms, 2),
                            "errors": run.load.errors,
                            "server_cpu_ms": round(run.server_cpu_ms_per_request or 0, 3),
                            "db_cpu_ms": round(run.db_cpu_ms_per_request or 0, 3),
                            "server_core_other": run.server_core_other,
                            "cores_busy": run.cpu_busy,
                            "gc": gc_pauses(gc_log, began, ended),
                        }
                    )
        rss = round(system.rss_mib(service.pid), 1)
        stop_timed(service)
    return {"runs": rows, "rss_mib_after": rss, "warnings": measurer.warnings}


def run(args: argparse.Namespace) -> int:
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("bench needs at least 2 CPUs: one for the server, one for the load")
    os.sched_setaffinity(0, {LOAD_CPU})
    at = datetime.now(UTC)
    stamp = at.strftime("%Y%m%dT%H%M%SZ")
    out_dir = ROOT / args.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    ghz = ensure_go_tool("ghz")
    sizes: list[dict[str, Any]] = []
    plans: list[dict[str, Any]] = []
    generic_plans: list[dict[str, Any]] = []
    with contextlib.ExitStack() as exits:
        most_authors = max(_authors(args, posts) for posts in args.sizes)
        stack = stand_up(exits, args.kafka, "uvloop", users=most_authors)
        if args.shared_buffers:
            # The throwaway server's 128MB holds 200k posts, not 5M: a deployment sizes it
            # to its working set. Restarted by the harness, so it stays on the load CPU.
            stack.postgres.psql(f"ALTER SYSTEM SET shared_buffers = '{args.shared_buffers}'")
            stack.postgres.stop()
            stack.postgres.start()
        migrate = run_cli("migrate", env=stack.env, timeout=180)
        if migrate.returncode != 0:
            raise RuntimeError(f"post-service migrate failed:\n{migrate.stderr[-3000:]}")
        found_versions = versions(stack, TOOLS["ghz"].version)
        stack_shared_buffers = stack.postgres.psql("SHOW shared_buffers")
        for posts in args.sizes:
            figures = load(stack, posts, _authors(args, posts), bool(args.shared_buffers))
            figures |= measure_size(args, stack, ghz, posts)
            sizes.append(figures)
            if posts == max(args.sizes) and args.explain:
                log(f"{posts:,} posts: EXPLAIN (ANALYZE, BUFFERS) of the request path")
                found = explain_all(
                    stack.postgres.dsn(), posts, _authors(args, posts), AUTHOR_STRIDE
                )
                plans = [as_json(plan) for plan in found]
                generic = explain_all(
                    stack.postgres.dsn(),
                    posts,
                    _authors(args, posts),
                    AUTHOR_STRIDE,
                    generic=True,
                )
                generic_plans = [as_json(plan) for plan in generic]
    data = {
        "schema": "scale-1",
        "date": at.isoformat(timespec="seconds"),
        "command": ".venv/bin/python -m bench.scale " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "server_cpu": SERVER_CPU, "load_cpu": LOAD_CPU},
        "versions": found_versions,
        "settings": {
            "duration": args.duration,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "repeats_of_GetByIdUserPost": args.repeats,
            "kafka": args.kafka,
            "queried_authors": QUERIED_AUTHORS,
            "authors": args.authors or "one per 100 posts",
            "shared_buffers": stack_shared_buffers,
        },
        "sizes": sizes,
        "plans": plans,
        "generic_plans": generic_plans,
    }
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    path = out_dir / f"scale-{stamp}.json"
    path.write_text(text)
    log(f"wrote {shown(path)}")
    markdown = scale_markdown(data)
    if args.docs:
        DOC_JSON.write_text(text)
        report.update_doc(DOC, [(SCALE_BEGIN, SCALE_END, markdown)])
        log(f"updated {shown(DOC)} and {shown(DOC_JSON)}")
    sys.stdout.write(markdown + "\n")
    return 0


def _authors(args: argparse.Namespace, posts: int) -> int:
    """``--authors``, or one author per 100 posts."""
    return int(args.authors or posts // POSTS_PER_AUTHOR)


def _sizes(text: str) -> list[int]:
    values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not values or any(v < POSTS_PER_AUTHOR * QUERIED_AUTHORS for v in values):
        raise argparse.ArgumentTypeError(
            f"comma-separated sizes, each at least {POSTS_PER_AUTHOR * QUERIED_AUTHORS:,}"
        )
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", type=_sizes, default=[200_000, 5_000_000])
    parser.add_argument("--duration", type=float, default=8.0, help="measured s (8)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up s per scenario (3)")
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[16],
        help="16",
    )
    parser.add_argument("--scenarios", type=select_scenarios, default=select_scenarios(SCENARIOS))
    parser.add_argument("--repeats", type=int, default=3, help="GetByIdUserPost windows (3)")
    parser.add_argument("--kafka", action="store_true", help="also start Kafka (off: no relay)")
    parser.add_argument(
        "--authors",
        type=int,
        default=0,
        help="authors at every size (default: one per 100 posts); at least 1000",
    )
    parser.add_argument("--no-explain", dest="explain", action="store_false")
    parser.add_argument(
        "--shared-buffers", default="", help="PostgreSQL's shared_buffers (the server's: 128MB)"
    )
    parser.add_argument("--output-dir", default="bench-results")
    parser.add_argument("--no-docs", dest="docs", action="store_false")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
