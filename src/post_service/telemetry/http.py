"""The metrics port: GET /metrics in the Prometheus text format, and nothing else."""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

_MAX_REQUEST_HEAD = 8192


class MetricsServer:
    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._registry = registry
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("metrics server not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            method, path = _request_line(head)
            if method not in {"GET", "HEAD"}:
                await _respond(writer, 405, b"method not allowed\n", "text/plain")
            elif path.split("?", 1)[0] != "/metrics":
                await _respond(writer, 404, b"not found: metrics are at /metrics\n", "text/plain")
            else:
                body = await asyncio.to_thread(generate_latest, self._registry)
                await _respond(writer, 200, body if method == "GET" else b"", CONTENT_TYPE_LATEST)
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ConnectionError,
            ValueError,
        ):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def _request_line(head: bytes) -> tuple[str, str]:
    if len(head) > _MAX_REQUEST_HEAD:
        raise ValueError("request head too large")
    method, path, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
    return method, path


async def _respond(
    writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str
) -> None:
    reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}[status]
    allow = "Allow: GET, HEAD\r\n" if status == 405 else ""
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n{allow}"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
