"""A gRPC server as a child process: started, ready once grpc.health.v1 says SERVING, stopped.

The tests run `post-service serve` this way (devenv.post_service_process) and the benchmark
also its ceiling server and stand-in User-service; ``startup_seconds`` is the time from the
process's start to its first SERVING answer.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Self

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devenv.lifecycle import LocalServer, kill_process

ROOT = Path(__file__).resolve().parent.parent
SERVING = health_pb2.HealthCheckResponse.SERVING
# One channel for all the readiness polls, reconnecting at once once the port is bound.
FAST_RECONNECT = (
    ("grpc.initial_reconnect_backoff_ms", 10),
    ("grpc.min_reconnect_backoff_ms", 10),
    ("grpc.max_reconnect_backoff_ms", 50),
)


class GrpcProcess(LocalServer):
    def __init__(
        self, command: Sequence[str], port: int, env: Mapping[str, str], log_path: Path
    ) -> None:
        self.command = list(command)
        self.port = port
        self.env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        self._log: IO[bytes] | None = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, wait_for: str = "", timeout: float = 60, poll: float = 0.1) -> Self:
        """Starts the command and waits until ``wait_for`` (a health service name) is SERVING."""
        self._log = self.log_path.open("ab")
        started = time.monotonic()
        self.process = subprocess.Popen(
            self.command, env=self.env, cwd=ROOT, stdout=self._log, stderr=self._log
        )
        self.wait_for_status(wait_for, SERVING, timeout, poll)
        self.startup_seconds = time.monotonic() - started
        return self

    def health(self, service: str = "") -> int:
        """The status of ``service`` now, on a fresh channel; -1 when there is no answer."""
        with grpc.insecure_channel(self.addr) as channel:
            return _status(health_pb2_grpc.HealthStub(channel), service)

    def wait_for_status(self, service: str, status: int, timeout: float, poll: float = 0.1) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.addr, options=FAST_RECONNECT) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                self._check_alive()
                if _status(stub, service) == status:
                    return
                time.sleep(poll)
        raise TimeoutError(f"{service!r} never reached status {status}:\n{self.logs()[-3000:]}")

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.command} exited {self.process.returncode}:\n{self.logs()}")

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code (subprocess.TimeoutExpired if it takes longer)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop(self) -> None:
        """Kills the process if it still runs."""
        if self.process is not None:
            kill_process(self.process)
        if self._log is not None:
            self._log.close()

    def close(self) -> None:
        self.stop()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _status(stub: health_pb2_grpc.HealthStub, service: str) -> int:
    try:
        answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
    except grpc.RpcError:
        return -1
    return int(answer.status)
