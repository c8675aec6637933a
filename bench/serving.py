"""Runs one of the benchmark's own gRPC servers until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


async def serve_until_signalled(
    add_servicer: Callable[[grpc.aio.Server], None],
    host: str,
    port: int,
    serving: Iterable[str] = ("",),
) -> None:
    """Binds host:port, reports ``serving`` as SERVING (the harness times start-up by it)."""
    server = grpc.aio.server()
    add_servicer(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"cannot bind {host}:{port}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    for service in serving:
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    await stop.wait()
    await server.stop(1)
