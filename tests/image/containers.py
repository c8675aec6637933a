"""Containers from the built images, run the way the chart runs the pods.

Every container is hardened as the chart's securityContext asks (read-only root filesystem with
a tmpfs on /tmp, no capabilities, no privilege escalation, the image's own non-root user) and
shares the host's network: the session's PostgreSQL and stand-in User-service listen on
127.0.0.1, and each container binds its own free loopback ports.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from grpc_health.v1 import health_pb2

from devenv.docker import Docker
from devenv.post_service_process import PostServiceProcess
from post_service.config import Settings

HARDENED = (
    "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges", "--network", "host",
)  # fmt: skip


def service_variables() -> set[str]:
    """The environment variables the service's settings read (DB_URL, GRPC_PORT, ...)."""
    names: set[str] = set()
    for field in Settings.model_fields.values():
        group: Any = field.annotation
        prefix = group.model_config.get("env_prefix", "")
        names |= {f"{prefix}{name}".upper() for name in group.model_fields}
    return names


def env_flags(env: Mapping[str, str], names: set[str]) -> list[str]:
    """``-e NAME`` for each of ``names`` set in ``env``: the client passes the value on."""
    return [flag for name in sorted(names & env.keys()) for flag in ("-e", name)]


def run_once(
    docker: Docker, image: str, *command: str, env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``docker run --rm`` (hardened) of the image's entrypoint with ``command``."""
    flags = env_flags(env, service_variables() | {"STUB_ADDR"})
    return docker("run", "--rm", *HARDENED, *flags, image, *command, env=env, check=False,
                  timeout=timeout)  # fmt: skip


def inspect(docker: Docker, name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = json.loads(docker("inspect", name).stdout)
    return found[0]


def wait_for_health(docker: Docker, name: str, status: str, timeout: float) -> dict[str, Any]:
    """Wait until Docker's own HEALTHCHECK reports ``status``; its State.Health record."""
    deadline = time.monotonic() + timeout
    while True:
        health: dict[str, Any] = inspect(docker, name)["State"].get("Health") or {}
        if health.get("Status") == status or time.monotonic() > deadline:
            return health
        time.sleep(0.5)


class Container:
    """A hardened, attached ``docker run`` of ``image`` with ``command`` (after its ENTRYPOINT).

    ``process`` is the ``docker run`` client: it exits with the container's exit code. ``env``
    goes to the client; the service's settings and ``STUB_ADDR`` are passed on to the container.
    """

    def __init__(
        self,
        docker: Docker,
        image: str,
        env: Mapping[str, str],
        log_path: Path,
        command: Sequence[str] = (),
    ) -> None:
        self.docker = docker
        self.image = image
        self.env = dict(env)
        self.log_path = log_path
        self.command = tuple(command)
        self.name = f"post-service-test-{uuid.uuid4().hex[:10]}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Container:
        flags = env_flags(self.env, service_variables() | {"STUB_ADDR"})
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.docker.binary), "run", "--name", self.name, *HARDENED, *flags,
                 self.image, *self.command],
                env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        return self

    def stop(self) -> None:
        """Remove the container whatever its state, then reap the client."""
        self.docker.remove_containers(self.name)
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait(10)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class ServiceContainer(PostServiceProcess):
    """``post-service`` in a Container: the handle the e2e tests have on the service process
    (addr, metrics_port, health, wait_for_status, logs), so their tests run against it."""

    def __init__(
        self,
        docker: Docker,
        image: str,
        env: dict[str, str],
        log_path: Path,
        command: Sequence[str] = ("serve",),
    ) -> None:
        super().__init__(env, log_path)
        self.container = Container(docker, image, self.env, log_path, command)
        self.name = self.container.name

    def start(self, wait_for: str = "post.Post", timeout: float = 60, poll: float = 0.1) -> Self:
        self.process = self.container.start().process
        self.wait_for_status(wait_for, health_pb2.HealthCheckResponse.SERVING, timeout, poll)
        return self

    def stop(self) -> None:
        self.container.stop()
