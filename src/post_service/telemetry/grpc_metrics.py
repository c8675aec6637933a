"""gRPC RED metrics for User-service calls (client), and the naming both sides share."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from post_service.telemetry.metrics import Metrics

UNARY = "unary"

# The gRPC Prometheus convention spells codes as Go does (NotFound, not NOT_FOUND); the
# dashboard and alert rules match these names.
CODE_NAMES: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}


def split_method(full_method: str) -> tuple[str, str]:
    """'/post.Post/CreatePost' -> ('post.Post', 'CreatePost')."""
    _, service, method = full_method.split("/", 2)
    return service, method


class ClientMetricsInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def intercept_unary_unary(
        self,
        continuation: Callable[[Any, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        method = client_call_details.method
        full = method.decode() if isinstance(method, bytes) else method
        labels = (UNARY, *split_method(full))
        self._metrics.client.started.labels(*labels).inc()
        begin = time.perf_counter()
        call = await continuation(client_call_details, request)
        try:
            code = CODE_NAMES.get(await call.code(), "Unknown")
        finally:
            elapsed = time.perf_counter() - begin
        self._metrics.client.handled.labels(*labels, code).inc()
        self._metrics.client.handling.labels(*labels, code).observe(elapsed)
        return call
