"""Runs a Python console script with every garbage-collector pass timed into a file.

``python -m bench.gc_probe LOG SCRIPT [ARGS...]``: ``bench.scale`` starts
``post-service serve`` through it to tell whether a latency spike was a collector pause.
Each line of LOG is ``<time.time()> <generation> <milliseconds> <collected>``; nothing in
the service changes but the callback, which costs two clock readings per collection.
"""

from __future__ import annotations

import gc
import runpy
import sys
import time
from typing import Any, TextIO


def install(out: TextIO) -> None:
    started: list[float] = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        millis = (time.perf_counter() - started[0]) * 1000
        out.write(f"{time.time():.6f} {info['generation']} {millis:.3f} {info['collected']}\n")
        out.flush()

    gc.callbacks.append(callback)


def main() -> None:
    log_path, script, *args = sys.argv[1:]
    install(open(log_path, "a", buffering=1))  # noqa: SIM115 - open for the process's life
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
