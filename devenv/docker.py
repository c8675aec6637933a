"""A Docker engine for `make image` and the image tests: Debian's docker.io, started on demand.

``ensure_docker()`` returns a ``Docker`` handle on a running engine. It installs Debian's
``docker.io`` package (Docker 20.10 with containerd and runc; no buildx, so ``docker build``
is the legacy builder) when ``dockerd`` is missing, and starts ``dockerd`` when no engine
answers. A dockerd it started runs under ``nice`` (the build steps and containers it runs
inherit that) and is stopped when the process exits; an engine that was already running is
used as it is and left alone. Calling it again in the same process is free.

Images and the build cache live in dockerd's own data root (``/var/lib/docker``), so they
outlive the engine process: a second run finds them.

Command line: ``python -m devenv.docker`` makes sure an engine runs and prints its client and
version; when it had to start dockerd, it keeps it running until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devenv.apt import apt_install
from devenv.lifecycle import stop_process

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".cache" / "docker"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
COMMAND_TIMEOUT_SECONDS = 120.0


class DockerError(RuntimeError):
    """The engine could not be installed or started, or a docker command failed."""


@dataclass(frozen=True)
class Docker:
    """The ``docker`` client of the engine's own package (same version as the daemon)."""

    binary: Path

    def __call__(
        self,
        *args: str,
        check: bool = True,
        timeout: float = COMMAND_TIMEOUT_SECONDS,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker *args``; with ``check``, a non-zero exit raises ``DockerError``.

        ``env`` is added to the client's environment: ``docker run -e NAME`` passes a value on
        to the container without putting it on the command line.
        """
        try:
            result = subprocess.run(
                [str(self.binary), *args], input=input, capture_output=True, timeout=timeout,
                check=False, env={**os.environ, **env} if env else None,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise DockerError(f"`docker {' '.join(args)}` timed out after {exc.timeout}s") from exc
        completed = subprocess.CompletedProcess(
            result.args,
            result.returncode,
            result.stdout.decode(errors="replace"),
            result.stderr.decode(errors="replace"),
        )
        if check and completed.returncode != 0:
            raise DockerError(
                f"`docker {' '.join(args[:3])} ...` failed ({completed.returncode}):\n"
                f"{completed.stderr[-4000:]}"
            )
        return completed

    def image_id(self, reference: str) -> str | None:
        """The local image's id (``sha256:...``), or None when it is not here."""
        found = self("image", "inspect", "--format", "{{.Id}}", reference, check=False)
        return found.stdout.strip() if found.returncode == 0 else None

    def remove_containers(self, *names: str) -> None:
        """``docker rm -f``: stop and delete containers; missing ones are fine."""
        if names:
            self("rm", "--force", "--volumes", *names, check=False)

    def server_version(self) -> str | None:
        answer = self("version", "--format", "{{.Server.Version}}", check=False, timeout=20)
        return answer.stdout.strip() if answer.returncode == 0 else None


_engine: Docker | None = None
_started: subprocess.Popen[bytes] | None = None  # the dockerd this process started, if any


def ensure_docker() -> Docker:
    """A running engine: install docker.io and start dockerd if needed (see the module doc)."""
    global _engine
    if _engine is not None and _engine.server_version() is not None:
        return _engine
    dockerd = _ensure_installed()
    docker = Docker(_client_next_to(dockerd))
    if docker.server_version() is None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        with (STATE_DIR / "start.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one starter; the others find it running
            if docker.server_version() is None:
                _start_dockerd(dockerd, docker)
    _engine = docker
    return docker


def _ensure_installed() -> Path:
    dockerd = _find("dockerd")
    if dockerd is None:
        apt_install("docker.io", why="docker")
        dockerd = _find("dockerd")
    if dockerd is None:
        raise DockerError("`dockerd` not found after installing docker.io")
    return dockerd


def _find(name: str) -> Path | None:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    return Path(found) if found else None


def _client_next_to(dockerd: Path) -> Path:
    """Prefer the package's own client (``/usr/bin/docker`` for ``/usr/sbin/dockerd``): another
    ``docker`` earlier on PATH may be a newer CLI that expects buildx for ``docker build``."""
    for directory in (dockerd.parent, dockerd.parent.parent / "bin"):
        if (directory / "docker").is_file():
            return directory / "docker"
    other = _find("docker")
    if other is None:
        raise DockerError(f"no `docker` client next to {dockerd} or on PATH")
    return other


def _start_dockerd(dockerd: Path, docker: Docker) -> None:
    global _started
    log = STATE_DIR / "dockerd.log"
    print(f"docker: starting dockerd (log: {log})", file=sys.stderr, flush=True)
    started = time.monotonic()
    command = [str(dockerd), "--pidfile", str(STATE_DIR / "dockerd.pid")]
    if shutil.which("nice"):
        command = ["nice", "-n", "10", *command]
    with log.open("ab") as output:
        # A session of its own: Ctrl-C on the caller does not kill it half-way; we stop it.
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    atexit.register(_stop_dockerd, process)
    _started = process
    deadline = started + START_TIMEOUT_SECONDS
    while (version := docker.server_version()) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            _stop_dockerd(process)
            tail = log.read_text(errors="replace")[-3000:]
            raise DockerError(f"dockerd did not start (exit {process.returncode}):\n{tail}")
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    print(f"docker: dockerd {version} ready in {elapsed:.1f}s", file=sys.stderr, flush=True)


def _stop_dockerd(process: subprocess.Popen[bytes]) -> None:
    """Stop the dockerd this process started (containers it still runs get stopped too)."""
    stop_process(process, STOP_TIMEOUT_SECONDS)


def main() -> int:
    docker = ensure_docker()
    print(f"{docker.binary}\t{docker.server_version()}", flush=True)
    if _started is None:
        return 0
    print("docker: Ctrl-C stops the dockerd started here", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        _started.wait()
    except KeyboardInterrupt:
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
