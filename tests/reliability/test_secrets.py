"""The database password never leaks: not in logs, error details, metadata or metrics.

The service runs against the private cluster as a role whose password is recognisable
(``support.SECRET_PASSWORD``), at LOG_LEVEL=DEBUG, while we provoke every kind of error we
can: invalid, missing, foreign and oversized requests, undecodable bytes, the database
stopped and restarted, a wrong password, and `migrate` against a database that is down.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from devenv.lifecycle import free_port
from devenv.post_service_process import (
    POST_SERVICE,
    ROOT,
    PostServiceProcess,
    run_cli,
)
from devenv.postgres import LocalPostgres
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from tests.reliability import support
from tests.reliability.support import SECRET_PASSWORD, raw_unary

pytestmark = pytest.mark.e2e

WRONG_PASSWORD = "Wr0ng-reliability-pw-99ab"


@dataclass
class Evidence:
    """Everything a caller or an operator could see while errors happened."""

    logs: str = ""
    details: list[str] = field(default_factory=list)
    metadata: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    cli_output: list[str] = field(default_factory=list)
    metrics: str | None = None


def _collect(evidence: Evidence, call: object, request: object) -> None:
    try:
        call(request, timeout=5)  # type: ignore[operator]
        evidence.codes.append("OK")
    except grpc.RpcError as error:
        evidence.codes.append(error.code().name)
        evidence.details.append(error.details() or "")
        evidence.metadata += [f"{k}={v!r}" for k, v in (error.trailing_metadata() or ())]
        evidence.metadata += [f"{k}={v!r}" for k, v in (error.initial_metadata() or ())]


@pytest.fixture(scope="module")
def evidence(
    private_postgres_cluster: LocalPostgres,
    private_service: PostServiceProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Evidence:
    """Provoke errors on the private service (which the outage tests, when they ran in this
    session, already took through database stops, kills, refusals and statement timeouts)."""
    cluster, process = private_postgres_cluster, private_service
    support.ensure_running(cluster)
    found = Evidence()
    with grpc.insecure_channel(process.addr) as channel:
        stub = PostStub(channel)
        own = _first_ok_create(stub)
        for call, request in [
            (stub.CreatePost, pb.PostCreateRequest(auth_id=1, title="nul\x00", body="b")),
            (stub.CreatePost, pb.PostCreateRequest(auth_id=0, title="t", body="b")),
            (stub.GetByIdPost, pb.PostGetByIdRequest(post_id=2**31 - 1)),
            (stub.GetGroupPost, pb.PostGetGroupRequest(limit=-1)),
            (stub.PutPost, pb.PostPutRequest(auth_id=2, post_id=own, title="x", body="y")),
            (stub.DeletePost, pb.PostDeleteRequest(auth_id=2, post_id=own)),
            (stub.GetByIdUserPost, pb.PostGetByIdUserRequest(username="nobody")),
            (stub.CreatePost, pb.PostCreateRequest(auth_id=1, title="t", body="x" * 2**21)),
        ]:
            _collect(found, call, request)
        for method in ("CreatePost", "PutPost", "GetByIdUserPost"):
            _collect(found, raw_unary(channel, f"/post.Post/{method}"), b"\x12\x02\xff\xfe")

        cluster.stop("fast")  # the database goes away under the running service
        time.sleep(1.5)  # the readiness probe notices (1 s interval)
        for _ in range(5):
            _collect(found, stub.GetByIdPost, pb.PostGetByIdRequest(post_id=own))
            _collect(found, stub.CreatePost, pb.PostCreateRequest(auth_id=1, title="t", body="b"))
        migrate = run_cli("migrate", "--timeout", "2", env=process.env)
        found.cli_output.append(migrate.stdout + migrate.stderr)
        cluster.start()
        _first_ok_create(stub)
    found.metrics = support.scrape_metrics(process.metrics_port)
    directory = tmp_path_factory.mktemp("secrets")
    found.cli_output.append(_serve_with_wrong_password(cluster, process.env, directory))
    found.logs = process.logs()
    support.record_figure(
        "secrets",
        {
            "rpc_errors_checked": len(found.details),
            "codes": {code: found.codes.count(code) for code in sorted(set(found.codes))},
            "log_lines_checked": len(found.logs.splitlines()),
            "cli_runs_checked": len(found.cli_output),
            "metrics_page": "checked" if found.metrics is not None else "not answering",
        },
    )
    return found


def _first_ok_create(stub: PostStub, timeout: float = 15) -> int:
    """A post id, once the service can write (the database may just have come back)."""
    deadline = time.monotonic() + timeout
    request = pb.PostCreateRequest(auth_id=1, title="t", body="b")
    while True:
        try:
            return int(stub.CreatePost(request, timeout=5).post_id)
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _serve_with_wrong_password(cluster: LocalPostgres, env: dict[str, str], directory: Path) -> str:
    """`serve` with a wrong password for a few seconds: what does it say?"""
    wrong_url = support.private_database_url(cluster).replace(SECRET_PASSWORD, WRONG_PASSWORD)
    wrong_env = {**env, "DB_URL": wrong_url, "GRPC_PORT": str(free_port())}
    wrong_env["METRICS_PORT"] = str(free_port())
    log = directory / "wrong-password.log"
    with log.open("wb") as log_file:
        serving = subprocess.Popen(
            [POST_SERVICE, "serve"], env=wrong_env, cwd=ROOT, stdout=log_file, stderr=log_file
        )
        deadline = time.monotonic() + 20
        # Until it exits, or has said what is wrong (and had a moment more to say why).
        while serving.poll() is None and time.monotonic() < deadline:
            said = log.read_text(errors="replace")
            if "password authentication failed" in said or "NOT_SERVING" in said:
                deadline = min(deadline, time.monotonic() + 1.0)
            time.sleep(0.1)
        exit_code = serving.poll()  # None: still running (e.g. up but NOT_SERVING)
        if exit_code is None:
            serving.kill()
            serving.wait(10)
    output = log.read_text(errors="replace")
    support.record_figure(
        "wrong_password_serve",
        {
            "exit_code": exit_code,
            "names_the_cause": "password authentication failed" in output,
            "json_lines_only": all(line.startswith("{") for line in output.splitlines()),
        },
    )
    return output


def test_the_password_is_in_no_log_line(evidence: Evidence) -> None:
    assert "readiness NOT_SERVING: " in evidence.logs  # the outage really was provoked
    leaking = [line for line in evidence.logs.splitlines() if SECRET_PASSWORD in line]
    assert not leaking, leaking[:3]


def test_the_password_is_in_no_error_detail_or_metadata(evidence: Evidence) -> None:
    assert "UNAVAILABLE" in evidence.codes
    assert "INVALID_ARGUMENT" in evidence.codes
    assert not [d for d in evidence.details if SECRET_PASSWORD in d]
    assert not [m for m in evidence.metadata if SECRET_PASSWORD in m]


def test_the_password_is_in_no_command_output(evidence: Evidence) -> None:
    for output in evidence.cli_output:
        assert SECRET_PASSWORD not in output
        assert WRONG_PASSWORD not in output


def test_the_password_is_in_no_metric(evidence: Evidence) -> None:
    if evidence.metrics is None:
        pytest.skip("nothing answers on METRICS_PORT yet: metrics not wired in")
    assert "grpc_server_handled_total" in evidence.metrics
    assert SECRET_PASSWORD not in evidence.metrics
    assert "post_app:" not in evidence.metrics  # no URL-shaped label value either


def test_wrong_password_is_reported_without_echoing_it(evidence: Evidence) -> None:
    output = evidence.cli_output[-1]
    assert output.strip(), "serve said nothing about a wrong password"
    assert WRONG_PASSWORD not in output
    # Give the operator something to go on.
    assert "password authentication failed" in output or "unreachable" in output, output[-2000:]
