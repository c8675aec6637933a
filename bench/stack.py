"""What the benchmark runs against, all on 127.0.0.1 and removed at the end of the run.

A throwaway PostgreSQL, a single-node Kafka (optional), the stand-in User-service
(bench/user_stand_in.py) on the load CPU; the service and the ceiling server on the server CPU.
Every process is registered with the caller's ExitStack before it starts, so it is stopped
whatever happens.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

from bench import system
from bench.dataset import BODY_MIN_CHARS, BODY_SPAN_CHARS, DataSet
from bench.progress import log
from bench.results import DataSetFigures, Outbox
from bench.system import LOAD_CPU, SERVER_CPU
from devenv.grpc_process import GrpcProcess
from devenv.kafka import LocalKafka
from devenv.kafka_jars import kafka_version
from devenv.lifecycle import free_port
from devenv.post_service_process import PostServiceProcess, run_cli, service_env
from devenv.postgres import LocalPostgres

START_TIMEOUT_SECONDS = 120
STOP_TIMEOUT_SECONDS = 40
STARTUP_POLL_SECONDS = 0.01  # start-up is timed to health SERVING at this resolution
PUT_PAIRS = 5_000
P = TypeVar("P", bound=GrpcProcess)


@dataclass(frozen=True)
class Stack:
    workdir: Path  # logs and call data
    postgres: LocalPostgres
    kafka: LocalKafka | None
    stand_in: GrpcProcess
    env: dict[str, str]  # the service's

    @property
    def postmaster_pid(self) -> int:
        return int((self.postgres.data / "postmaster.pid").read_text().split()[0])

    @property
    def put_file(self) -> Path:
        """PutPost's call data: authors editing their own posts."""
        return self.workdir / "put.json"

    @property
    def kafka_servers(self) -> str:
        return self.kafka.bootstrap_servers if self.kafka is not None else ""


def stand_up(exits: ExitStack, with_kafka: bool, event_loop: str, users: int = 1000) -> Stack:
    workdir = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="post-bench-")))
    kafka = None
    if with_kafka:
        log("starting Kafka")
        kafka = exits.enter_context(LocalKafka())
    log("starting PostgreSQL")
    postgres = exits.enter_context(LocalPostgres())
    stand_in = _started(exits, _stand_in(workdir, users))
    env = service_env(
        postgres.url,
        USER_SERVICE_ADDR=stand_in.addr,
        KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap_servers if kafka is not None else "",
        GRPC_PORT=str(free_port()),
        EVENT_LOOP=event_loop,
    )
    return Stack(workdir, postgres, kafka, stand_in, env)


def _stand_in(workdir: Path, users: int) -> GrpcProcess:
    port = free_port()
    command = ["taskset", "-c", str(LOAD_CPU), sys.executable, "-m", "bench.user_stand_in",
               "--port", str(port), "--users", str(users)]  # fmt: skip
    return GrpcProcess(command, port, os.environ, workdir / "user-stand-in.log")


def start_service(exits: ExitStack, stack: Stack) -> PostServiceProcess:
    service = PostServiceProcess(stack.env, stack.workdir / "service.log", prefix=_on_server_cpu())
    return _started(exits, service)


def start_ceiling(exits: ExitStack, stack: Stack, event_loop: str) -> GrpcProcess:
    port = free_port()
    command = [*_on_server_cpu(), sys.executable, "-m", "bench.ceiling_server",
               "--port", str(port), "--event-loop", event_loop]  # fmt: skip
    return _started(exits, GrpcProcess(command, port, os.environ, stack.workdir / "ceiling.log"))


def _on_server_cpu() -> list[str]:
    return ["taskset", "-c", str(SERVER_CPU)]  # taskset execs the server: the pid stays


def _started(exits: ExitStack, process: P) -> P:
    exits.callback(process.stop)
    return process.start(wait_for="", timeout=START_TIMEOUT_SECONDS, poll=STARTUP_POLL_SECONDS)


def stop_timed(process: GrpcProcess) -> float | None:
    """SIGTERM and wait; the seconds it took to exit (None if it had to be killed)."""
    if process.process is None or process.process.poll() is not None:
        return None
    started = time.monotonic()
    try:
        process.terminate(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.stop()
        return None
    return time.monotonic() - started


def seed(stack: Stack, data: DataSet) -> DataSetFigures:
    """Migrates, seeds the data set, writes PutPost's call data; how long seeding took."""
    migrate = run_cli("migrate", env=stack.env, timeout=180)
    if migrate.returncode != 0:
        raise RuntimeError(f"post-service migrate failed:\n{migrate.stderr[-3000:]}")
    started = time.monotonic()
    stack.postgres.psql(data.seed_sql())
    stack.postgres.psql("VACUUM (ANALYZE) posts")
    seconds = time.monotonic() - started
    _write_put_requests(stack, data)
    return DataSetFigures(
        posts=data.posts,
        authors=data.authors,
        posts_per_author=data.posts_per_author,
        body_chars=f"{BODY_MIN_CHARS}..{BODY_MIN_CHARS + BODY_SPAN_CHARS - 1}",
        seed_seconds=round(seconds, 2),
    )


def _write_put_requests(stack: Stack, data: DataSet) -> None:
    rows = stack.postgres.psql(
        f"SELECT author_id || ',' || id FROM posts WHERE id <= {data.posts} "  # noqa: S608
        f"ORDER BY md5(id::text) LIMIT {PUT_PAIRS}"
    ).split()
    pairs = [(int(a), int(p)) for a, p in (row.split(",") for row in rows)]
    stack.put_file.write_text(json.dumps(data.put_requests(pairs)))


def versions(stack: Stack, ghz: str) -> dict[str, str]:
    return {
        "python": sys.version.split()[0],
        "grpcio": version("grpcio"),
        "protobuf": version("protobuf"),
        "sqlalchemy": version("sqlalchemy"),
        "asyncpg": version("asyncpg"),
        "post_service": version("post-service"),
        "postgres": stack.postgres.psql("SHOW server_version"),
        "kafka": kafka_version(),
        "ghz": ghz,
    }


def outbox(stack: Stack) -> Outbox:
    total, pending = stack.postgres.psql(
        "SELECT count(*) || ' ' || count(*) FILTER (WHERE sent_at IS NULL) FROM outbox"
    ).split()
    return Outbox(total=int(total), pending=int(pending), sent=int(total) - int(pending))


def placement(stack: Stack, service: GrpcProcess) -> dict[str, list[int]]:
    """Which CPUs each process may run on."""
    found = {
        "service": system.affinity(service.pid),
        "harness": system.affinity(os.getpid()),
        "postgres": system.affinity(stack.postmaster_pid),
        "user_stand_in": system.affinity(stack.stand_in.pid),
    }
    if stack.kafka is not None and stack.kafka.pid:
        found["kafka"] = system.affinity(stack.kafka.pid)
    return found
