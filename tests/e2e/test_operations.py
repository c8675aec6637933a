"""Operating the process: health, reflection, shutdown, migrations and configuration."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from devenv.post_service_process import (
    POST_SERVICE,
    PostServiceProcess,
    run_cli,
    service_env,
)
from devenv.postgres import LocalPostgres
from devenv.user_service import StandInUserService
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from post_service.adapters.postgres.migrations import head_revision
from tests.support.health import NOT_SERVING, SERVING
from tests.support.reflection import V1_METHODS, reflected
from tests.support.service_env import SLOW_USER_SERVICE, env_with_user_service

pytestmark = pytest.mark.e2e


def test_health_is_serving_for_overall_readiness_and_liveness(service: PostServiceProcess) -> None:
    assert service.health("") == SERVING
    assert service.health("post.Post") == SERVING
    assert service.health("liveness") == SERVING


def test_reflection_lists_and_describes_the_post_service(service: PostServiceProcess) -> None:
    services, methods = reflected(service.addr, "post.Post")
    assert {"post.Post", "grpc.health.v1.Health"} <= services
    assert methods == V1_METHODS


def test_healthcheck_command_reports_serving(service: PostServiceProcess) -> None:
    ok = run_cli("healthcheck", "--addr", service.addr, "--service", "post.Post", env=service.env)
    assert ok.returncode == 0, ok.stderr
    unknown = run_cli("healthcheck", "--addr", service.addr, "--service", "nope", env=service.env)
    assert unknown.returncode == 1


# --- database outage ------------------------------------------------------------------------


@pytest.fixture
def own_postgres() -> Iterator[LocalPostgres]:
    with LocalPostgres() as cluster:
        yield cluster


def test_database_outage_drains_readiness_and_recovers_without_restart(
    own_postgres: LocalPostgres, user_service: StandInUserService, tmp_path: Path
) -> None:
    env = env_with_user_service(own_postgres.url, user_service.addr)
    assert run_cli("migrate", env=env).returncode == 0
    process = PostServiceProcess(env, tmp_path / "serve.log").start()
    try:
        with grpc.insecure_channel(process.addr) as channel:
            posts = PostStub(channel)
            created = posts.CreatePost(
                pb.PostCreateRequest(auth_id=1, title="t", body="b"), timeout=5
            )
            own_postgres.stop("immediate")
            process.wait_for_status("post.Post", NOT_SERVING, timeout=15)
            assert process.health("") == NOT_SERVING
            assert process.health("liveness") == SERVING
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as raised:
                posts.GetByIdPost(pb.PostGetByIdRequest(post_id=created.post_id), timeout=10)
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
            assert time.monotonic() - started < 5
            own_postgres.start()
            process.wait_for_status("post.Post", SERVING, timeout=15)
            again = posts.GetByIdPost(pb.PostGetByIdRequest(post_id=created.post_id), timeout=5)
            assert again.post_id == created.post_id
        assert "local-dev-password" not in process.logs()
    finally:
        process.stop()


# --- shutdown -------------------------------------------------------------------------------


def test_sigterm_lets_in_flight_requests_finish_and_exits_zero(
    db_url: str, user_service: StandInUserService, tmp_path: Path
) -> None:
    env = env_with_user_service(
        db_url, user_service.addr, **SLOW_USER_SERVICE, SHUTDOWN_GRACE_SECONDS="10"
    )
    process = PostServiceProcess(env, tmp_path / "serve.log").start()
    user_service.delay_seconds = 1.5  # keeps every request in flight while SIGTERM arrives
    results: list[object] = []

    def call() -> None:
        with grpc.insecure_channel(process.addr) as channel:
            try:
                results.append(
                    PostStub(channel).GetGroupPost(pb.PostGetGroupRequest(limit=1), timeout=10)
                )
            except grpc.RpcError as error:
                results.append(error.code())

    callers = [threading.Thread(target=call) for _ in range(5)]
    for caller in callers:
        caller.start()
    time.sleep(0.7)
    try:
        exit_code = process.terminate(timeout=20)
    finally:
        process.stop()
    for caller in callers:
        caller.join()
    assert exit_code == 0
    assert len(results) == 5
    assert all(isinstance(result, pb.PostListResponse) for result in results), results


HEAD = head_revision()

# --- migrations -----------------------------------------------------------------------------


def test_migrate_twice_is_a_no_op(fresh_database: str, postgres: LocalPostgres) -> None:
    env = service_env(fresh_database)
    first = run_cli("migrate", env=env)
    second = run_cli("migrate", env=env)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    database = fresh_database.rsplit("/", 1)[1]
    assert postgres.psql("SELECT version_num FROM alembic_version", database=database) == HEAD


def test_concurrent_migrations_both_end_at_head(
    fresh_database: str, postgres: LocalPostgres
) -> None:
    env = service_env(fresh_database)
    command = [str(Path(POST_SERVICE)), "migrate"]
    racers = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(3)
    ]
    codes = [racer.wait(60) for racer in racers]
    assert codes == [0, 0, 0], [racer.stdout.read() for racer in racers if racer.stdout]
    database = fresh_database.rsplit("/", 1)[1]
    assert postgres.psql("SELECT version_num FROM alembic_version", database=database) == HEAD
    tables = "SELECT count(*) FROM pg_tables WHERE tablename IN ('posts', 'outbox')"
    assert postgres.psql(tables, database=database) == "2"


def test_migrate_waits_for_a_starting_database_and_fails_clearly_when_it_never_comes(
    tmp_path: Path,
) -> None:
    cluster = LocalPostgres()
    try:
        env = service_env(cluster.url)
        migrating = subprocess.Popen(
            [str(POST_SERVICE), "migrate", "--timeout", "30"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        time.sleep(2)  # migrate is now retrying against a database that is not up yet
        cluster.start()
        assert migrating.wait(60) == 0, migrating.stdout.read() if migrating.stdout else ""
        assert cluster.psql("SELECT version_num FROM alembic_version") == HEAD
    finally:
        cluster.close()
    never = run_cli("migrate", "--timeout", "2", env=service_env(cluster.url))
    assert never.returncode == 1
    assert "database not ready within 2 s: connection refused by 127.0.0.1:" in never.stderr
    assert "local-dev-password" not in never.stderr


def test_serve_refuses_invalid_configuration_with_a_clear_message() -> None:
    env = service_env("postgresql://post:hunter2-secret@db:5432/x", GRPC_PORT="not-a-port")
    result = run_cli("serve", env=env, timeout=30)
    assert result.returncode == 2
    assert "DB_URL: Value error, DB_URL must start with postgresql+asyncpg://" in result.stderr
    assert "GRPC_PORT: Input should be a valid integer" in result.stderr
    assert "hunter2-secret" not in result.stderr


def test_serve_that_cannot_start_says_why_releases_what_started_and_exits_one(
    db_url: str,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", env=service_env(db_url, METRICS_PORT=str(port)), timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "post-service could not start" in output
    assert "address already in use" in output
    assert '"message": "stopped"' in output  # app.stop() ran: ports, pool and channel closed
    assert "never awaited" not in output  # the workers that never ran were closed too


# --- connection recycling -------------------------------------------------------------------


def test_a_long_lived_channel_is_recycled_at_the_max_age_without_failed_calls(
    db_url: str, user_service: StandInUserService, tmp_path: Path
) -> None:
    env = env_with_user_service(
        db_url,
        user_service.addr,
        GRPC_MAX_CONNECTION_AGE_SECONDS="1.5",
        GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS="1",
    )
    process = PostServiceProcess(env, tmp_path / "serve.log").start()
    states: list[grpc.ChannelConnectivity] = []
    failures: list[grpc.StatusCode] = []
    calls = 0
    try:
        with grpc.insecure_channel(process.addr) as channel:
            channel.subscribe(states.append, try_to_connect=True)
            posts = PostStub(channel)
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline:
                try:
                    posts.GetGroupPost(pb.PostGetGroupRequest(limit=1), timeout=5)
                except grpc.RpcError as error:
                    failures.append(error.code())
                calls += 1
                time.sleep(0.02)
    finally:
        process.stop()
    ready = states.count(grpc.ChannelConnectivity.READY)
    assert failures == []
    assert calls > 50
    # One connection per 1.5 s of age: the server's GOAWAY made the client reconnect.
    assert ready >= 3, states


def test_without_kafka_the_service_serves_and_says_so_once(service: PostServiceProcess) -> None:
    lines = [
        line for line in service.logs().splitlines() if "KAFKA_BOOTSTRAP_SERVERS not set" in line
    ]
    assert len(lines) == 1
    assert service.health("post.Post") == SERVING


# --- event loop -----------------------------------------------------------------------------


def started_on(process: PostServiceProcess) -> str:
    (line,) = [line for line in process.logs().splitlines() if "serving gRPC" in line]
    return str(json.loads(line)["event_loop"])


def test_serve_runs_on_uvloop_by_default(service: PostServiceProcess) -> None:
    # Every other e2e test talks to this process: together they are the proof that
    # grpc.aio (and asyncpg, aiokafka) behave on uvloop.
    assert started_on(service) == "uvloop"


def test_event_loop_asyncio_serves_on_the_standard_loop(
    db_url: str, user_service: StandInUserService, tmp_path: Path
) -> None:
    env = env_with_user_service(db_url, user_service.addr, EVENT_LOOP="asyncio")
    process = PostServiceProcess(env, tmp_path / "serve.log").start()
    try:
        with grpc.insecure_channel(process.addr) as channel:
            PostStub(channel).GetGroupPost(pb.PostGetGroupRequest(limit=1), timeout=5)
        assert started_on(process) == "asyncio"
    finally:
        process.stop()
