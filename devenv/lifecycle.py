"""What every throwaway local server of the devenv shares: a free port, `with` that cleans up,
and one way to stop a helper process and to drop a half-made directory.

``with LocalPostgres() as db:`` starts the server and always closes it (stopping it and
removing its files), also when the block fails. Subclasses say how to ``start`` and ``close``.

``stop_process`` asks a child process to exit (SIGTERM) and kills it (SIGKILL) if it takes too
long; ``kill_process`` kills it at once. ``removed_on_failure(directory)`` wraps the setup that
fills a fresh temporary directory, so a failed setup leaves no directory behind.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

# Where free_port() looks: below the kernel's ephemeral range (32768-60999 by default) and
# below Kubernetes' NodePort range (30000-32767), which a cluster's services may claim.
PORT_RANGE = range(20000, 30000)
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Not one the kernel would hand out for port 0: those come from the ephemeral range, which
    is also where every outgoing connection takes its source port, so between this call and
    the server's bind a client connecting anywhere could take the port (a test once failed
    with "address already in use" that way). A random port below that range is never taken
    by a connect, only by another listener.
    """
    low = _ephemeral_low()
    candidates = [port for port in PORT_RANGE if port < low]
    for _ in range(50):
        port = candidates[secrets.randbelow(len(candidates))] if candidates else 0
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError(f"no free port found in {PORT_RANGE} on 127.0.0.1")


def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def stop_process(process: subprocess.Popen[Any], timeout: float) -> bool:
    """Send SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; returns once it has exited.

    True when the process shut down on the SIGTERM in time (a clean stop), False when it had
    already exited before the call or had to be killed.
    """
    if process.poll() is not None:
        return False
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_process(process)
        return False
    return True


def kill_process(process: subprocess.Popen[Any]) -> None:
    """SIGKILL the process if it still runs, and reap it."""
    if process.poll() is None:
        process.kill()
        process.wait()


@contextmanager
def removed_on_failure(directory: Path) -> Iterator[None]:
    """Remove ``directory`` (and all in it) if the block raises, then let the error through."""
    try:
        yield
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


class LocalServer:
    def start(self) -> Self:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
