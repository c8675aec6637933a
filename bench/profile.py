"""Sampling profiles of the running server with py-spy, summed up by component.

py-spy records every thread with ``--native`` (C and Cython frames too: grpc's core and aio
layer, protobuf's upb, asyncpg's protocol). The summary looks at the asyncio thread, where the
handlers run; grpc's poller thread mostly sleeps in epoll_wait and is reported on its own.

Each sample is charged to one component: the frame nearest the leaf that belongs to a known
library (frames of the interpreter, libc and generic stdlib modules are charged to whoever
called them). Samples whose leaf is a system call are also counted as "in the kernel".
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PY_SPY_VERSION = "0.4.3"
ROOT = Path(__file__).resolve().parent.parent
TOOLS_DIR = ROOT / ".cache" / "bench-tools" / "py-spy"

# (component, pattern on one frame "function (file:line)" or "symbol (library)"), first match.
COMPONENTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("our code (post_service)", r"post_service/"),
        ("logging", r"[(/]logging/"),
        ("telemetry (prometheus_client, opentelemetry)", r"prometheus_client/|opentelemetry/"),
        ("SQLAlchemy", r"sqlalchemy/|\bgreenlet\b"),
        ("asyncpg", r"asyncpg/"),
        ("protobuf", r"google/protobuf|_message\.|\bupb_|PyUpb"),
        ("grpc (core, cygrpc, aio)", r"grpc/|grpc_|cygrpc|libgrpc"),
        ("cachetools", r"cachetools/"),
        ("pydantic", r"pydantic"),
        ("asyncio event loop", r"asyncio/|_asyncio|selectors\.py|selectmodule|select_epoll"),
    )
)
SYSCALLS = frozenset(
    {
        "read", "write", "recv", "recvfrom", "recvmsg", "send", "sendto", "sendmsg", "writev",
        "readv", "epoll_wait", "epoll_pwait", "epoll_ctl", "poll", "ppoll", "syscall", "futex",
        "eventfd_read", "eventfd_write", "__libc_recv", "__libc_send", "__GI___poll",
    }
)  # fmt: skip
WAITS = frozenset({"epoll_wait", "epoll_pwait", "poll", "ppoll"})


def find_py_spy() -> Path | None:
    for candidate in (
        Path(sys.executable).parent / "py-spy",
        TOOLS_DIR / "bin" / "py-spy",
    ):
        if candidate.is_file():
            return candidate
    found = shutil.which("py-spy")
    return Path(found) if found else None


def ensure_py_spy() -> Path:
    """py-spy from the venv or PATH; else installed once under .cache/bench-tools (pip)."""
    found = find_py_spy()
    if found is not None:
        return found
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--target", str(TOOLS_DIR),
         f"py-spy=={PY_SPY_VERSION}"],
        check=True,
        timeout=600,
    )  # fmt: skip
    found = find_py_spy()
    if found is None:
        raise RuntimeError("py-spy did not install")
    return found


def record(
    py_spy: Path, pid: int, seconds: float, output: Path, rate: int = 100, cpu: int = 1
) -> subprocess.Popen[bytes]:
    """Starts recording (collapsed stacks, all threads, native frames); wait() on the result."""
    command = [
        "taskset", "-c", str(cpu), str(py_spy), "record", "--pid", str(pid),
        "--duration", str(int(seconds)), "--rate", str(rate), "--native",
        "--format", "raw", "--output", str(output),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@dataclass
class ProfileSummary:
    samples: int = 0
    loop_samples: int = 0
    waiting: int = 0
    kernel: int = 0
    by_component: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    leaves: Counter[str] = field(default_factory=Counter)
    ours: Counter[str] = field(default_factory=Counter)
    other_threads: Counter[str] = field(default_factory=Counter)

    def as_dict(self, top: int = 15) -> dict[str, Any]:
        busy = max(1, self.loop_samples - self.waiting)

        def share(counter: Counter[str], limit: int | None = None) -> list[dict[str, Any]]:
            return [
                {"name": name, "samples": n, "share": round(n / busy, 4)}
                for name, n in counter.most_common(limit)
            ]

        return {
            "samples_all_threads": self.samples,
            "event_loop_thread_samples": self.loop_samples,
            "event_loop_waiting_samples": self.waiting,
            "busy_samples": busy,
            "kernel_share": round(self.kernel / busy, 4),
            "self_by_component": share(self.by_component),
            "inclusive_by_component": share(self.inclusive),
            "top_leaf_frames": share(self.leaves, top),
            "top_our_functions_inclusive": share(self.ours, top),
            "other_threads": share(self.other_threads, 8),
        }


def component_of(frame: str) -> str | None:
    for name, pattern in COMPONENTS:
        if pattern.search(frame):
            return name
    return None


def _symbol(frame: str) -> str:
    return re.sub(r"^0x[0-9a-f]+ ", "", frame.split(" (", 1)[0]) if frame else frame


def _short(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``func (file.py)``, addresses dropped."""
    frame = re.sub(r"^0x[0-9a-f]+ ", "", frame)
    match = re.match(r"(.*?) ?\((?:.*/)?([^/:]+)(?::\d+)?\)$", frame)
    if match is None:
        return frame
    return f"{match.group(1)} ({match.group(2)})" if match.group(1) else f"({match.group(2)})"


def _loop_depth(frames: list[str]) -> int:
    for depth, frame in enumerate(frames):
        if frame.startswith("BaseEventLoop._run_once "):
            after = depth + 1
            while after < len(frames) and frames[after].startswith("Handle._run "):
                after += 1
            return after
    return 0


def summarise(raw: Path) -> ProfileSummary:
    """Reads py-spy's raw (collapsed) output: ``frame;frame;...;leaf count`` per line."""
    summary = ProfileSummary()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        summary.samples += count
        leaf_symbol = _symbol(frames[-1])
        if "Thread._bootstrap" in stack or "thread_run" in stack:
            state = "waiting" if leaf_symbol in WAITS or leaf_symbol == "syscall" else "busy"
            owner = next((c for f in reversed(frames) if (c := component_of(f))), "other")
            summary.other_threads[f"{owner}: {state}"] += count
            continue
        summary.loop_samples += count
        nearest = next((c for f in reversed(frames) if (c := component_of(f))), None)
        if leaf_symbol in WAITS and nearest == "asyncio event loop":
            summary.waiting += count  # the selector found nothing ready: idle
            continue
        if leaf_symbol in SYSCALLS:
            summary.kernel += count
        summary.by_component[nearest or "Python runtime / other"] += count
        summary.leaves[_short(frames[-1])] += count
        # Below the loop's _run_once is the work of one callback; above it (asyncio.run,
        # post_service.cli) every sample would count.
        work = frames[_loop_depth(frames) :]
        for name in {c for f in work if (c := component_of(f))}:
            summary.inclusive[name] += count
        for name in {_short(f) for f in work if "post_service/" in f}:
            summary.ours[name] += count
    return summary
