"""Runs the real `post-service` command as a child process, as a deployment would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devenv.lifecycle import free_port

ROOT = Path(__file__).resolve().parents[2]
POST_SERVICE = str(Path(sys.executable).parent / "post-service")


def service_env(db_url: str, **overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DB_", "GRPC_", "KAFKA_", "USER_SERVICE_", "POSTS_", "OTEL_"))
    }
    env.update(
        DB_URL=db_url,
        GRPC_HOST="127.0.0.1",
        METRICS_HOST="127.0.0.1",
        METRICS_PORT=str(free_port()),
        USER_SERVICE_ADDR="127.0.0.1:1",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [POST_SERVICE, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip


class PostServiceProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = int(env.get("GRPC_PORT") or free_port())
        self.env = {**env, "GRPC_PORT": str(self.port)}
        self.metrics_port = int(self.env["METRICS_PORT"])
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, wait_for: str = "post.Post", timeout: float = 60) -> PostServiceProcess:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [POST_SERVICE, "serve"], env=self.env, cwd=ROOT, stdout=self._log, stderr=self._log
        )
        self.wait_for_status(wait_for, health_pb2.HealthCheckResponse.SERVING, timeout)
        return self

    def health(self, service: str = "") -> int:
        with grpc.insecure_channel(self.addr) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                return int(
                    stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2).status
                )
            except grpc.RpcError:
                return -1

    def wait_for_status(self, service: str, status: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"post-service exited {self.process.returncode}:\n{self.logs()}")
            if self.health(service) == status:
                return
            time.sleep(0.1)
        raise TimeoutError(f"{service!r} never reached status {status}:\n{self.logs()[-3000:]}")

    def terminate(self, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self.process is not None:
            self._log.close()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
