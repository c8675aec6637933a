"""Start the cluster's daemons, remember their pids in files, and stop only those.

A daemon runs in its own session with its output in ``logs/<name>.log``. Its pid file lets a
later run stop what a crashed one left behind; a pid is only ever signalled while its command
line still names the cluster's directory, so a reused pid is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


class ProcessError(RuntimeError):
    """A daemon exited while it was being started."""


def start(name: str, command: list[str], logs: Path, pids: Path) -> subprocess.Popen[bytes]:
    logs.mkdir(parents=True, exist_ok=True)
    pids.mkdir(parents=True, exist_ok=True)
    with (logs / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (pids / f"{name}.pid").write_text(str(process.pid))
    return process


def check_alive(name: str, process: subprocess.Popen[bytes], logs: Path) -> None:
    if process.poll() is not None:
        tail = (logs / f"{name}.log").read_text(errors="replace")[-3000:]
        raise ProcessError(f"{name} exited with {process.returncode}:\n{tail}")


def ours(pid: int, marker: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker in cmdline


def stop(name: str, pids: Path, marker: str, timeout: float = 20.0) -> None:
    """SIGTERM the daemon ``name`` (then SIGKILL after ``timeout``) if it is still ours."""
    pid_file = pids / f"{name}.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    if ours(pid, marker):
        terminate(pid, marker, timeout)
    pid_file.unlink()


def terminate(pid: int, marker: str, timeout: float) -> None:
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while ours(pid, marker) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    if ours(pid, marker):
        _signal(pid, signal.SIGKILL)
        for _ in range(50):
            _reap(pid)
            if not ours(pid, marker):
                break
            time.sleep(0.1)


def processes_naming(marker: str) -> list[int]:
    """Every process whose command line contains ``marker`` (e.g. containerd shims)."""
    found = []
    for entry in Path("/proc").iterdir():
        if (
            entry.name.isdigit()
            and int(entry.name) != os.getpid()
            and ours(int(entry.name), marker)
        ):
            found.append(int(entry.name))
    return found


def _signal(pid: int, signo: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signo)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child: its parent reaps it
        os.waitpid(pid, os.WNOHANG)
