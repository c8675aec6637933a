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
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import profile as profiling
from bench import report, system
from bench.dataset import BODY_MIN_CHARS, BODY_SPAN_CHARS, DataSet
from bench.load import (
    SCENARIO_KEYS,
    SCENARIOS,
    Scenario,
    ghz_command,
    run_ghz,
    select_scenarios,
)
from devenv.gotools import TOOLS, ensure_go_tool
from devenv.kafka import LocalKafka, kafka_version
from devenv.lifecycle import free_port
from devenv.post_service_process import POST_SERVICE, service_env
from devenv.postgres import LocalPostgres

ROOT = Path(__file__).resolve().parent.parent
SERVER_CPU = 0
LOAD_CPU = 1
MIB = 1024 * 1024
PROFILE_SCENARIOS = "GetByIdPost,GetGroupPost:first"
PUT_PAIRS = 5_000


def log(message: str) -> None:
    sys.stderr.write(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}\n")
    sys.stderr.flush()


class ServerProcess:
    """A gRPC server child process on the server CPU, timed from start to health SERVING."""

    def __init__(self, name: str, command: list[str], port: int, env: dict[str, str], logs: Path):
        self.name = name
        self.command = ["taskset", "-c", str(SERVER_CPU), *command]
        self.port = port
        self.env = env
        self.log_path = logs / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid  # taskset execs the server: same pid

    def start(self, timeout: float = 120) -> ServerProcess:
        with self.log_path.open("ab") as output:
            started = time.monotonic()
            self.process = subprocess.Popen(
                self.command, env=self.env, cwd=ROOT, stdout=output, stderr=output
            )
        self.startup_seconds = wait_serving(self.target, started, timeout, self._check_alive)
        return self

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited {self.process.returncode}:\n{tail}")

    def rss_mib(self) -> float:
        return system.rss_bytes(self.pid) / MIB

    def cpu_seconds(self) -> float:
        return system.cpu_seconds(self.pid)

    def stop(self, timeout: float = 40) -> float | None:
        """SIGTERM and wait; the seconds it took to exit (None if it had to be killed)."""
        if self.process is None or self.process.poll() is not None:
            return None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            return None
        return time.monotonic() - started


def wait_serving(
    target: str, started: float, timeout: float, check_alive: Any = lambda: None
) -> float:
    """Polls grpc.health.v1 Check("") every 10 ms; seconds from ``started`` to SERVING."""
    options = [
        ("grpc.initial_reconnect_backoff_ms", 10),
        ("grpc.min_reconnect_backoff_ms", 10),
        ("grpc.max_reconnect_backoff_ms", 50),
    ]
    with grpc.insecure_channel(target, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() - started < timeout:
            check_alive()
            try:
                answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=0.5)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return time.monotonic() - started
            except grpc.RpcError:
                pass
            time.sleep(0.01)
    raise TimeoutError(f"{target} did not report SERVING within {timeout:g}s")


@dataclass
class Bench:
    args: argparse.Namespace
    ghz: Path
    workdir: Path
    data: DataSet
    postgres: LocalPostgres
    put_file: Path
    kafka: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def postmaster_pid(self) -> int:
        return int((self.postgres.data / "postmaster.pid").read_text().split()[0])

    def ghz_for(
        self,
        server: ServerProcess,
        scenario: Scenario,
        concurrency: int,
        seconds: float | None = None,
        total: int | None = None,
        rate: int | None = None,
    ) -> list[str]:
        return ghz_command(
            self.ghz, server.target, scenario.rpc, concurrency,
            service=scenario.service, proto=scenario.proto,
            data=scenario.data, data_file=None if scenario.data else self.put_file,
            duration_seconds=seconds, total=total, rate=rate, cpu=LOAD_CPU,
        )  # fmt: skip

    def measure(
        self, server: ServerProcess, scenario: Scenario, concurrency: int
    ) -> dict[str, Any]:
        label = f"{server.name} {scenario.key} c={concurrency}"
        warmup_errors = 0
        rss_after_warmup = None
        if self.args.warmup > 0:
            log(f"{label}: warm-up {self.args.warmup:g}s")
            warm = run_ghz(
                self.ghz_for(server, scenario, concurrency, self.args.warmup),
                ROOT,
                self.args.warmup + 120,
            )
            warmup_errors = warm.errors
            rss_after_warmup = round(server.rss_mib(), 1)
        db_pid = self.postmaster_pid()
        cores_before = system.CoreTimes.now()
        cpu_before = server.cpu_seconds()
        db_before = system.tree_cpu_seconds(db_pid)
        load_before = system.load_average()
        result = run_ghz(
            self.ghz_for(server, scenario, concurrency, self.args.duration),
            ROOT,
            self.args.duration + 120,
        )
        cpu = server.cpu_seconds() - cpu_before
        db_cpu = system.tree_cpu_seconds(db_pid) - db_before
        cores_after = system.CoreTimes.now()
        busy = cores_after.busy_since(cores_before)
        steal = cores_after.steal_since(cores_before)
        run = {
            "server": server.name,
            "scenario": scenario.key,
            "rpc": scenario.rpc,
            "concurrency": concurrency,
            **result.as_dict(),
            "warmup_errors": warmup_errors,
            "server_cpu_seconds": round(cpu, 3),
            "server_cpu_ms_per_request": 1000 * cpu / result.count if result.count else None,
            "server_core_busy": cpu / result.seconds if result.seconds else None,
            "db_cpu_ms_per_request": (
                1000 * db_cpu / result.count if result.count and server.name == "service" else None
            ),
            "cpu_busy": {str(core): round(share, 3) for core, share in busy.items()},
            "cpu_steal": {str(core): round(share, 3) for core, share in steal.items()},
            # Busy time on the server's CPU that the server did not use: other processes
            # (unpinned ones, like a test run) and softirq work.
            "server_core_other": (
                round(busy.get(SERVER_CPU, 0.0) - cpu / result.seconds, 3)
                if result.seconds
                else None
            ),
            "load_bound": busy.get(LOAD_CPU, 0.0) >= 0.95
            and bool(result.seconds)
            and cpu / result.seconds < 0.9,
            "loadavg_before": load_before,
            "rss_mib_after_warmup": rss_after_warmup,
            "rss_mib_after": round(server.rss_mib(), 1),
        }
        if (
            self.args.half_load
            and server.name == "service"
            and scenario.kind == "read"
            and concurrency == min(self.args.concurrency)
        ):
            # Closed-loop saturation makes latency = concurrency / throughput; at half the
            # throughput (a constant arrival rate) the latency is the service's own.
            rate = max(1, int(result.rps / 2))
            half = run_ghz(
                self.ghz_for(server, scenario, concurrency, self.args.duration, rate=rate),
                ROOT,
                self.args.duration + 120,
            )
            run["half_load"] = {"rate": rate, **half.as_dict()}
            log(f"{label}: at {rate} req/s: p50 {half.p50_ms:.1f} ms, p99 {half.p99_ms:.1f} ms")
        log(
            f"{label}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.1f} ms, "
            f"p99 {result.p99_ms:.1f} ms, errors {result.errors}, "
            f"server CPU {run['server_cpu_ms_per_request'] or 0:.2f} ms/req, "
            f"cores {run['cpu_busy']}"
        )
        if (run["server_core_other"] or 0) > 0.15:
            self.warnings.append(
                f"{label}: {run['server_core_other']:.0%} of the server's CPU went to other "
                "work (another process or softirq); its figures understate the server"
            )
        if steal.get(SERVER_CPU, 0.0) > 0.05:
            self.warnings.append(
                f"{label}: the hypervisor stole {steal[SERVER_CPU]:.0%} of the server's CPU"
            )
        if run["load_bound"]:
            self.warnings.append(
                f"{label}: the load CPU was saturated while the server's was not: this "
                "throughput is a lower bound (for a ceiling run, the ratio an upper bound)"
            )
        if result.errors or warmup_errors:
            log(f"{label}: errors {result.status_codes} {result.error_samples}")
        self.runs.append(run)
        return run


def start_stand_in(logs: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = ["taskset", "-c", str(LOAD_CPU), sys.executable, "-m", "bench.user_stand_in",
               "--port", str(port), "--users", "1000"]  # fmt: skip
    with (logs / "user-stand-in.log").open("ab") as output:
        process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=output)
    wait_serving(f"127.0.0.1:{port}", time.monotonic(), 60)
    return process, f"127.0.0.1:{port}"


def seed(postgres: LocalPostgres, env: dict[str, str], data: DataSet) -> float:
    migrate = subprocess.run(
        [POST_SERVICE, "migrate"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180,
        check=False,
    )  # fmt: skip
    if migrate.returncode != 0:
        raise RuntimeError(f"post-service migrate failed:\n{migrate.stderr[-3000:]}")
    started = time.monotonic()
    postgres.psql(data.seed_sql())
    postgres.psql("VACUUM (ANALYZE) posts")
    return time.monotonic() - started


def write_put_requests(postgres: LocalPostgres, data: DataSet, path: Path) -> None:
    rows = postgres.psql(
        f"SELECT author_id || ',' || id FROM posts WHERE id <= {data.posts} "  # noqa: S608
        f"ORDER BY md5(id::text) LIMIT {PUT_PAIRS}"
    ).split()
    pairs = [(int(a), int(p)) for a, p in (row.split(",") for row in rows)]
    path.write_text(json.dumps(data.put_requests(pairs)))


def versions(postgres: LocalPostgres, ghz: str) -> dict[str, str]:
    from importlib.metadata import version

    return {
        "python": sys.version.split()[0],
        "grpcio": version("grpcio"),
        "protobuf": version("protobuf"),
        "sqlalchemy": version("sqlalchemy"),
        "asyncpg": version("asyncpg"),
        "post_service": version("post-service"),
        "postgres": postgres.psql("SHOW server_version"),
        "kafka": kafka_version(),
        "ghz": ghz,
    }


def outbox_state(postgres: LocalPostgres) -> dict[str, int]:
    total, pending = postgres.psql(
        "SELECT count(*) || ' ' || count(*) FILTER (WHERE sent_at IS NULL) FROM outbox"
    ).split()
    return {"total": int(total), "pending": int(pending), "sent": int(total) - int(pending)}


def rows_against_ceiling(runs: list[dict[str, Any]], scenarios: list[Scenario]) -> list[Any]:
    ceilings = {(r["rpc"], r["concurrency"]): r for r in runs if r["server"] == "ceiling"}
    by_key = {s.key: s for s in scenarios}
    rows = []
    for run in runs:
        if run["server"] != "service":
            continue
        scenario = by_key[run["scenario"]]
        if not scenario.is_v1:
            rows.append(row_beside_v1(run, scenario, runs))
            continue
        ceiling = ceilings.get((run["rpc"], run["concurrency"]))
        ratio = run["rps"] / ceiling["rps"] if ceiling and ceiling["rps"] else None
        checks = {
            f"ratio ≥ {scenario.min_ceiling_ratio:.0%}": (
                ratio is not None and ratio >= scenario.min_ceiling_ratio
            ),
            "zero errors": run["errors"] == 0,
        }
        if scenario.max_p99_ms_at_16 is not None and run["concurrency"] == 16:
            checks[f"p99 ≤ {scenario.max_p99_ms_at_16:g} ms"] = (
                run["p99_ms"] <= scenario.max_p99_ms_at_16
            )
        rows.append(
            {
                **run,
                "description": scenario.description,
                "ceiling_rps": ceiling["rps"] if ceiling else None,
                "ratio": ratio,
                "target_ratio": scenario.min_ceiling_ratio,
                "checks": checks,
                "pass": all(checks.values()),
            }
        )
    return rows


def row_beside_v1(
    run: dict[str, Any], scenario: Scenario, runs: list[dict[str, Any]]
) -> dict[str, Any]:
    """A post.v2 scenario, next to its v1 counterpart from the same run and concurrency."""
    baseline = next(
        (
            r
            for r in runs
            if r["server"] == "service"
            and r["scenario"] == scenario.baseline
            and r["concurrency"] == run["concurrency"]
        ),
        None,
    )
    checks = {"zero errors": run["errors"] == 0}
    if scenario.baseline is not None:
        checks[f"≥ {scenario.baseline} req/s"] = (
            baseline is not None and run["rps"] >= baseline["rps"]
        )
    return {
        **run,
        "api": "post.v2",
        "description": scenario.description,
        "baseline": scenario.baseline,
        "baseline_run": baseline,
        "ratio": run["rps"] / baseline["rps"] if baseline and baseline["rps"] else None,
        "checks": checks,
        "pass": all(checks.values()),
    }


def profile_service(
    bench: Bench, service: ServerProcess, raw_dir: Path, stamp: str
) -> dict[str, Any]:
    py_spy = profiling.ensure_py_spy()
    seconds = bench.args.profile_seconds
    concurrency = 16
    result: dict[str, Any] = {
        "py_spy": profiling.PY_SPY_VERSION,
        "rate": 100,
        "seconds": seconds,
        "concurrency": concurrency,
        "raw_dir": str(raw_dir.relative_to(ROOT)),
        "scenarios": {},
    }
    for scenario in select_scenarios(bench.args.profile_scenarios):
        raw = raw_dir / f"profile-{stamp}-{scenario.key.replace(':', '-')}.txt"
        log(f"profile {scenario.key} c={concurrency}: {seconds:g}s under py-spy")
        ghz = subprocess.Popen(
            bench.ghz_for(service, scenario, concurrency, seconds + 2),
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(1)
        spy = profiling.record(py_spy, service.pid, seconds, raw, cpu=LOAD_CPU)
        _, spy_errors = spy.communicate(timeout=seconds + 60)
        out, _ = ghz.communicate(timeout=seconds + 60)
        if spy.returncode != 0 or not raw.exists():
            bench.warnings.append(f"py-spy failed for {scenario.key}: {spy_errors[-500:]!r}")
            continue
        rps = json.loads(out)["rps"] if out.startswith("{") else None
        summary = profiling.summarise(raw)
        result["scenarios"][scenario.key] = {"rps": rps, "summary": summary.as_dict()}
    return result


def run_long(bench: Bench, service: ServerProcess, total: int) -> dict[str, Any]:
    scenario = SCENARIOS[0]
    concurrency = bench.args.concurrency[0]
    if bench.args.warmup > 0:
        log(f"long run: warm-up {bench.args.warmup:g}s")
        run_ghz(bench.ghz_for(service, scenario, concurrency, bench.args.warmup), ROOT, 300)
    before = service.rss_mib()
    series: list[tuple[float, float]] = [(0.0, before)]
    done = threading.Event()
    started = time.monotonic()

    def sample() -> None:
        while not done.wait(5):
            series.append((round(time.monotonic() - started, 1), service.rss_mib()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    log(f"long run: {total:,} GetByIdPost requests at c={concurrency}")
    try:
        result = run_ghz(
            bench.ghz_for(service, scenario, concurrency, total=total),
            ROOT,
            max(60, total // 100) + 120,
        )
    finally:
        done.set()
        sampler.join()
    after = service.rss_mib()
    series.append((round(time.monotonic() - started, 1), after))
    log(f"long run: {result.rps:,.0f} req/s, RSS {before:.1f} -> {after:.1f} MiB")
    return {
        "requests": result.count,
        "concurrency": concurrency,
        "seconds": result.seconds,
        "rps": result.rps,
        "p99_ms": result.p99_ms,
        "errors": result.errors,
        "status_codes": result.status_codes,
        "rss_before_mib": round(before, 1),
        "rss_after_mib": round(after, 1),
        "rss_series_mib": [(t, round(m, 1)) for t, m in series],
    }


@contextlib.contextmanager
def stopping(process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def run(args: argparse.Namespace) -> int:
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("bench needs at least 2 CPUs: one for the server, one for the load")
    # Everything this process starts inherits the load CPU; only the servers get CPU 0.
    os.sched_setaffinity(0, {LOAD_CPU})
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    command = ".venv/bin/python -m bench.run" + (
        " " + shlex.join(sys.argv[1:]) if sys.argv[1:] else ""
    )
    results: dict[str, Any] = {
        "schema": 1,
        "date": started_at.isoformat(timespec="seconds"),
        "command": command,
        "machine": system.machine(),
        "load_at_start": {"uptime": system.uptime_line(), "loadavg": system.load_average()},
    }
    log(f"start: {results['load_at_start']['uptime']}")
    out_dir = ROOT / args.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    ghz = ensure_go_tool("ghz")
    data = DataSet()
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="post-bench-")))
        kafka_servers = ""
        if args.kafka:
            log("starting Kafka")
            kafka = stack.enter_context(LocalKafka())
            kafka_servers = kafka.bootstrap_servers
        log("starting PostgreSQL")
        postgres = stack.enter_context(LocalPostgres())
        stand_in, stand_in_addr = start_stand_in(workdir)
        stack.enter_context(stopping(stand_in))
        env = service_env(
            postgres.url,
            USER_SERVICE_ADDR=stand_in_addr,
            KAFKA_BOOTSTRAP_SERVERS=kafka_servers,
            GRPC_PORT=str(free_port()),
            EVENT_LOOP=args.event_loop,
        )
        log(f"migrating and seeding {data.posts:,} posts")
        seed_seconds = seed(postgres, env, data)
        log(f"seeded in {seed_seconds:.1f}s")
        put_file = workdir / "put.json"
        write_put_requests(postgres, data, put_file)
        bench = Bench(args, ghz, workdir, data, postgres, put_file, kafka_servers)
        results.update(
            versions=versions(postgres, TOOLS["ghz"].version),
            settings={
                "duration": args.duration,
                "warmup": args.warmup,
                "concurrency": args.concurrency,
                "scenarios": [s.key for s in args.scenarios],
                "kafka": kafka_servers,
                "server_cpu": SERVER_CPU,
                "load_cpu": LOAD_CPU,
                "event_loop": args.event_loop,
            },
            dataset={
                "posts": data.posts,
                "authors": data.authors,
                "posts_per_author": data.posts_per_author,
                "body_chars": f"{BODY_MIN_CHARS}..{BODY_MIN_CHARS + BODY_SPAN_CHARS - 1}",
                "seed_seconds": round(seed_seconds, 2),
            },
        )

        log("starting post-service")
        service = ServerProcess(
            "service", [POST_SERVICE, "serve"], int(env["GRPC_PORT"]), env, workdir
        ).start()
        stack.callback(service.stop)
        service_info: dict[str, Any] = {
            "startup_seconds": round(service.startup_seconds or 0, 3),
            "rss_mib": {"after_start": round(service.rss_mib(), 1)},
        }
        results["placement"] = {
            "service": system.affinity(service.pid),
            "harness": system.affinity(os.getpid()),
            "postgres": system.affinity(bench.postmaster_pid()),
            "user_stand_in": system.affinity(stand_in.pid),
            **({"kafka": system.affinity(kafka.pid)} if args.kafka and kafka.pid else {}),
        }
        log(f"post-service SERVING after {service.startup_seconds:.2f}s")

        if args.long:
            long = run_long(bench, service, args.long)
            service.stop()
            long.update(date=results["date"], command=command, machine=results["machine"])
            long["load_at_start"] = results["load_at_start"]
            path = out_dir / f"long-{stamp}.json"
            path.write_text(json.dumps(long, indent=2) + "\n")
            if args.docs:
                report.update_doc(
                    ROOT / "docs" / "benchmarks.md",
                    [(report.LONG_BEGIN, report.LONG_END, report.long_markdown(long))],
                )
            log(f"wrote {path.relative_to(ROOT)}")
            return 0

        for scenario in args.scenarios:
            for concurrency in args.concurrency:
                bench.measure(service, scenario, concurrency)
                service_info["rss_mib"].setdefault(
                    "after_warmup", bench.runs[0]["rss_mib_after_warmup"]
                )
        service_info["rss_mib"]["after_run"] = round(service.rss_mib(), 1)
        if args.profile:
            results["profile"] = profile_service(bench, service, out_dir, stamp)
        service_info["shutdown_seconds"] = service.stop()
        results["service"] = service_info
        if any(s.kind == "write" for s in args.scenarios):
            results["outbox"] = outbox_state(postgres)

        if args.ceiling:
            port = free_port()
            ceiling = ServerProcess(
                "ceiling",
                [
                    sys.executable,
                    "-m",
                    "bench.ceiling_server",
                    "--port",
                    str(port),
                    "--event-loop",
                    args.event_loop,
                ],
                port,
                dict(os.environ),
                workdir,
            ).start()
            stack.callback(ceiling.stop)
            results["ceiling"] = {"startup_seconds": round(ceiling.startup_seconds or 0, 3)}
            seen: set[str] = set()
            for scenario in args.scenarios:
                if scenario.rpc in seen or not scenario.is_v1:
                    continue
                seen.add(scenario.rpc)
                for concurrency in args.concurrency:
                    bench.measure(ceiling, scenario, concurrency)
            results["ceiling"]["rss_mib"] = {"after_run": round(ceiling.rss_mib(), 1)}
            ceiling.stop()

    results["runs"] = bench.runs
    results["rows"] = rows_against_ceiling(bench.runs, args.scenarios)
    results["load_at_end"] = {"loadavg": system.load_average()}
    results["warnings"] = bench.warnings
    path = out_dir / f"{stamp}.json"
    text = json.dumps(results, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text)
    log(f"wrote {path.relative_to(ROOT)}")
    if args.docs:
        (ROOT / "docs" / "benchmarks.json").write_text(text)
        blocks = [(report.RESULTS_BEGIN, report.RESULTS_END, report.results_markdown(results))]
        if "profile" in results:
            blocks.append(
                (
                    report.PROFILE_BEGIN,
                    report.PROFILE_END,
                    report.profile_markdown(results["profile"]),
                )
            )
        report.update_doc(ROOT / "docs" / "benchmarks.md", blocks)
        log("updated docs/benchmarks.md and docs/benchmarks.json")
    sys.stdout.write(report.results_markdown(results) + "\n")
    failed = [row for row in results["rows"] if not row["pass"]]
    return 1 if failed and args.strict else 0


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
