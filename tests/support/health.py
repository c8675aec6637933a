"""grpc.health.v1 as the tests read it: its answers by name, and a watch on readiness."""

from __future__ import annotations

import threading
import time

from grpc_health.v1 import health_pb2

from devenv.grpc_process import GrpcProcess

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def watch_readiness(
    process: GrpcProcess, changes: list[tuple[float, int]], stop: threading.Event
) -> None:
    """Until ``stop`` is set, appends (time.monotonic(), status) to ``changes`` whenever the
    "post.Post" health status differs from the last one seen; polls every 50 ms. For a thread."""
    last: int | None = None
    while not stop.is_set():
        status = process.health("post.Post")
        if status != last:
            changes.append((time.monotonic(), status))
            last = status
        time.sleep(0.05)
