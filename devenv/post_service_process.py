"""Runs the real `post-service` command as a child process, as a deployment would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from devenv.grpc_process import ROOT, GrpcProcess
from devenv.lifecycle import free_port

__all__ = ["POST_SERVICE", "ROOT", "PostServiceProcess", "run_cli", "service_env"]

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


class PostServiceProcess(GrpcProcess):
    """`post-service serve` on GRPC_PORT (a free one when unset); ``prefix`` goes before it
    (the benchmark pins it to a core with ``taskset -c N``, which execs: the pid stays)."""

    def __init__(self, env: dict[str, str], log_path: Path, prefix: Sequence[str] = ()) -> None:
        port = int(env.get("GRPC_PORT") or free_port())
        env = {**env, "GRPC_PORT": str(port)}
        super().__init__([*prefix, POST_SERVICE, "serve"], port, env, log_path)
        self.metrics_port = int(self.env["METRICS_PORT"])

    def start(self, wait_for: str = "post.Post", timeout: float = 60, poll: float = 0.1) -> Self:
        return super().start(wait_for, timeout, poll)
