"""Load and soak: a fixed request rate mixing every RPC against a real post-service process.

    .venv/bin/python -m tests.reliability.soak [--duration 300] [--rate 50] [--kafka]

Starts its own throwaway PostgreSQL, a stand-in User-service and `post-service serve` (and,
with ``--kafka``, a local Kafka broker; an exported KAFKA_BOOTSTRAP_SERVERS is used instead
when set), then sends requests open-loop at ``--rate`` per second for ``--duration`` seconds:
a request's latency counts from when it was due, so a stalled service cannot hide behind a
slowed-down client. Every request is one that must succeed, so the expected error count is 0.

Reported: requests and errors by RPC and status, p50/p90/p99/max latency, the service's
resident memory sampled every ``--sample-seconds`` (10) with the first and last minute
compared, and, when Kafka is on, whether the outbox drained
(``SELECT count(*) FROM outbox WHERE sent_at IS NULL`` reaches 0). Exit status 0 when there
were no errors, memory stayed flat and the outbox (if any) drained; 1 otherwise. A JSON report
is written to ``--report`` (default .cache/reliability/soak-<time>.json).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from tests.reliability.support import ROOT, percentile, rss_bytes
from tests.support.service_env import env_with_user_service

MIB = 1024 * 1024
# Weights of the request mix (sum 100).
MIX = (
    ("GetByIdPost", 28),
    ("GetGroupPost", 18),
    ("GetByIdUserPost", 14),
    ("CreatePost", 16),
    ("PutPost", 12),
    ("DeletePost", 12),
)
AUTHORS = range(1, 51)  # the stand-in User-service knows users 1..999
SEED_POSTS = 200


@dataclass
class Sample:
    at: float  # seconds since the load started
    rss: int


@dataclass
class LoadResult:
    duration: float
    rate: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    codes: dict[str, collections.Counter[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    late_starts: int = 0

    @property
    def requests(self) -> int:
        return sum(sum(c.values()) for c in self.codes.values())

    @property
    def error_count(self) -> int:
        return sum(n for c in self.codes.values() for code, n in c.items() if code != "OK")


class PostPool:
    """Posts the load may touch. Reads and edits use the seeded ones, which are never deleted;
    deletes take posts created during the run, each exactly once."""

    def __init__(self, seeded: list[tuple[int, int]]) -> None:
        self.stable = seeded  # (post id, author)
        self._created: collections.deque[tuple[int, int]] = collections.deque()
        self._lock = threading.Lock()

    def add(self, post_id: int, author: int) -> None:
        with self._lock:
            self._created.append((post_id, author))

    def take_deletable(self) -> tuple[int, int] | None:
        with self._lock:
            return self._created.popleft() if self._created else None


def seed(stub: PostStub, count: int = SEED_POSTS) -> PostPool:
    rng = random.Random(1)
    seeded = []
    for n in range(count):
        author = rng.choice(AUTHORS)
        request = pb.PostCreateRequest(auth_id=author, title=f"seed {n}", body="soak seed")
        seeded.append((stub.CreatePost(request, timeout=10).post_id, author))
    return PostPool(seeded)


def _request_for(rpc: str, pool: PostPool, rng: random.Random, n: int) -> tuple[str, Any]:
    """The request to send for a drawn RPC (a delete with nothing to delete becomes a create)."""
    post_id, author = rng.choice(pool.stable)
    if rpc == "DeletePost":
        deletable = pool.take_deletable()
        if deletable is not None:
            return rpc, pb.PostDeleteRequest(auth_id=deletable[1], post_id=deletable[0])
        rpc = "CreatePost"
    if rpc == "GetByIdPost":
        return rpc, pb.PostGetByIdRequest(post_id=post_id)
    if rpc == "GetGroupPost":
        limit, last_id = rng.choice((0, 10, 50)), rng.choice((0, post_id))
        return rpc, pb.PostGetGroupRequest(limit=limit, last_id=last_id)
    if rpc == "GetByIdUserPost":
        if n % 2:
            return rpc, pb.PostGetByIdUserRequest(username=f"user-{author}")
        return rpc, pb.PostGetByIdUserRequest(auth_id=author)
    if rpc == "PutPost":
        return rpc, pb.PostPutRequest(auth_id=author, post_id=post_id, title=f"e{n}", body="edit")
    body = "x" * rng.randrange(1, 2000)
    return "CreatePost", pb.PostCreateRequest(auth_id=rng.choice(AUTHORS), title=f"s{n}", body=body)


def run_load(
    addr: str,
    rate: float,
    duration: float,
    pid: int | None = None,
    sample_seconds: float = 10.0,
    workers: int = 32,
    timeout: float = 5.0,
    pool: PostPool | None = None,
    progress: Callable[[str], None] | None = None,
) -> LoadResult:
    """Send ``rate`` requests per second for ``duration`` seconds; sample ``pid``'s memory."""
    result = LoadResult(duration=duration, rate=rate)
    lock = threading.Lock()
    names = [name for name, weight in MIX for _ in range(weight)]
    with grpc.insecure_channel(addr) as channel:
        stub = PostStub(channel)
        pool = pool or seed(stub)
        rng = random.Random(2)
        stop_sampling = threading.Event()
        started = time.monotonic()

        def sample() -> None:
            while pid is not None:
                result.samples.append(Sample(time.monotonic() - started, rss_bytes(pid)))
                if stop_sampling.wait(sample_seconds):
                    return

        def send(rpc: str, request: Any, due: float) -> None:
            method = getattr(stub, rpc)
            try:
                reply = method(request, timeout=timeout)
                code = "OK"
            except grpc.RpcError as error:
                code = error.code().name
                reply = None
                with lock:
                    if len(result.errors) < 50:
                        result.errors.append(f"{rpc}: {code} {error.details()}")
            latency = time.monotonic() - due
            if code == "OK" and rpc == "CreatePost":
                pool.add(reply.post_id, request.auth_id)
            with lock:
                result.latencies.setdefault(rpc, []).append(latency)
                result.codes.setdefault(rpc, collections.Counter())[code] += 1

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        next_report = started + 30
        with ThreadPoolExecutor(max_workers=workers) as executor:
            n = 0
            while True:
                due = started + n / rate
                now = time.monotonic()
                if due - started >= duration:
                    break
                if due > now:
                    time.sleep(due - now)
                elif now - due > 0.1:
                    result.late_starts += 1
                rpc, request = _request_for(names[rng.randrange(len(names))], pool, rng, n)
                executor.submit(send, rpc, request, due)
                n += 1
                if progress is not None and now >= next_report:
                    next_report += 30
                    progress(f"{now - started:5.0f} s: {result.requests} answered, "
                             f"{result.error_count} errors")  # fmt: skip
        stop_sampling.set()
        sampler.join(5)
    return result


def summarize(result: LoadResult) -> dict[str, Any]:
    every = [v for values in result.latencies.values() for v in values]
    report: dict[str, Any] = {
        "duration_s": result.duration,
        "rate_per_s": result.rate,
        "requests": result.requests,
        "errors": result.error_count,
        "first_errors": result.errors[:10],
        "late_starts": result.late_starts,
        "latency_s": _latency(every),
        "by_rpc": {
            rpc: {"codes": dict(result.codes[rpc]), "latency_s": _latency(values)}
            for rpc, values in sorted(result.latencies.items())
        },
    }
    report["memory"] = memory_verdict(result.samples, result.duration)
    return report


def _latency(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 0.50), 4),
        "p90": round(percentile(values, 0.90), 4),
        "p99": round(percentile(values, 0.99), 4),
        "max": round(max(values, default=0.0), 4),
    }


def memory_verdict(samples: Sequence[Sample], duration: float) -> dict[str, Any]:
    """Mean RSS over the first and the last minute (thirds, for runs under two minutes)."""
    if len(samples) < 2:
        return {"samples": len(samples), "flat": None}
    window = 60.0 if duration >= 120 else duration / 3
    first = [s.rss for s in samples if s.at < window] or [samples[0].rss]
    last = [s.rss for s in samples if s.at >= duration - window] or [samples[-1].rss]
    first_mean, last_mean = sum(first) / len(first), sum(last) / len(last)
    growth = last_mean - first_mean
    # Flat: no more than 10 % or 10 MiB (whichever is larger) above the first minute.
    allowed = max(0.10 * first_mean, 10 * MIB)
    return {
        "samples": len(samples),
        "window_s": round(window, 1),
        "first_window_mib": round(first_mean / MIB, 1),
        "last_window_mib": round(last_mean / MIB, 1),
        "growth_mib": round(growth / MIB, 1),
        "allowed_growth_mib": round(allowed / MIB, 1),
        "flat": growth <= allowed,
        "series_mib": [round(s.rss / MIB, 1) for s in samples],
    }


def wait_for_outbox_drained(psql: Callable[[str], str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    while True:
        pending = int(psql("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
        if pending == 0 or time.monotonic() >= deadline:
            return {
                "rows": int(psql("SELECT count(*) FROM outbox")),
                "pending_at_end": pending,
                "drained": pending == 0,
                "waited_s": round(time.monotonic() - started, 1),
            }
        time.sleep(1)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from devenv.lifecycle import free_port
    from devenv.post_service_process import PostServiceProcess, run_cli
    from devenv.postgres import LocalPostgres
    from devenv.user_service import StandInUserService

    def say(line: str) -> None:
        print(f"soak: {line}", file=sys.stderr, flush=True)

    kafka: Any = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    workdir = Path(tempfile.mkdtemp(prefix="post-service-soak-"))
    with LocalPostgres() as postgres:
        users = StandInUserService().start()
        process = None
        try:
            if args.kafka and not bootstrap:
                from devenv.kafka import LocalKafka

                kafka = LocalKafka().start()
                bootstrap = kafka.bootstrap_servers
            overrides = {"METRICS_PORT": str(free_port())}
            if bootstrap:
                overrides["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
            env = env_with_user_service(postgres.url, users.addr, **overrides)
            migrated = run_cli("migrate", env=env)
            if migrated.returncode != 0:
                say(f"migrate failed:\n{migrated.stderr}")
                return 1
            process = PostServiceProcess(env, workdir / "serve.log").start()
            assert process.process is not None
            say(
                f"service pid {process.process.pid} on {process.addr}, "
                f"kafka: {bootstrap or 'off'}; {args.rate:g} req/s for {args.duration:g} s"
            )
            result = run_load(
                process.addr,
                args.rate,
                args.duration,
                pid=process.process.pid,
                sample_seconds=args.sample_seconds,
                workers=args.workers,
                progress=say,
            )
            report = summarize(result)
            if bootstrap:
                report["outbox"] = wait_for_outbox_drained(postgres.psql, args.outbox_timeout)
            else:
                report["outbox"] = {"checked": False, "reason": "KAFKA_BOOTSTRAP_SERVERS not set"}
            report["service_alive"] = process.process.poll() is None
        finally:
            if process is not None:
                process.stop()
            users.stop()
            if kafka is not None:
                kafka.close()
    passed = (
        report["errors"] == 0
        and report["memory"]["flat"] is not False
        and report["outbox"].get("drained", True)
        and report["service_alive"]
    )
    report["passed"] = passed
    path = Path(args.report) if args.report else _default_report_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    _print_summary(report, path)
    return 0 if passed else 1


def _default_report_path() -> Path:
    return ROOT / ".cache" / "reliability" / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"


def _print_summary(report: dict[str, Any], path: Path) -> None:
    memory = report["memory"]
    lines = [
        f"requests {report['requests']} at {report['rate_per_s']:g}/s over "
        f"{report['duration_s']:g} s; errors {report['errors']}; late starts "
        f"{report['late_starts']}",
        "latency (from due time) p50 {p50} s, p90 {p90} s, p99 {p99} s, max {max} s".format(
            **report["latency_s"]
        ),
        f"memory: first window {memory.get('first_window_mib')} MiB, last window "
        f"{memory.get('last_window_mib')} MiB, growth {memory.get('growth_mib')} MiB "
        f"(allowed {memory.get('allowed_growth_mib')}), flat: {memory.get('flat')}",
        f"outbox: {report['outbox']}",
        f"{'PASSED' if report['passed'] else 'FAILED'} (report: {path})",
    ]
    for rpc, stats in report["by_rpc"].items():
        lines.insert(2, f"  {rpc:16} {stats['codes']} p99 {stats['latency_s']['p99']} s")
    print("\n".join(lines), flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load (300)")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second (50)")
    parser.add_argument("--workers", type=int, default=32, help="client threads (32)")
    parser.add_argument("--sample-seconds", type=float, default=10.0, help="RSS sampling (10)")
    parser.add_argument("--kafka", action="store_true", help="start a local Kafka broker")
    parser.add_argument("--outbox-timeout", type=float, default=60.0, help="drain wait (60)")
    parser.add_argument("--report", help="JSON report path")
    return parser


if __name__ == "__main__":
    sys.exit(main())
