"""gRPC RED metrics: a server interceptor and a client interceptor for User-service."""

from __future__ import annotations

import contextvars
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

# The method of the RPC being handled, for metrics recorded deeper down (degraded usernames).
current_method: contextvars.ContextVar[str] = contextvars.ContextVar("current_method", default="")


def split_method(full_method: str) -> tuple[str, str]:
    """'/post.Post/CreatePost' -> ('post.Post', 'CreatePost')."""
    _, service, method = full_method.split("/", 2)
    return service, method


class ServerMetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        cached = self._wrapped.get(details.method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if (
            handler is None
            or handler.unary_unary is None
            or details.method.startswith("/grpc.health.")
        ):
            return handler  # probes would drown the service's own traffic
        wrapped = grpc.unary_unary_rpc_method_handler(
            self._measured(details.method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[details.method] = wrapped
        return wrapped

    def _measured(
        self, full_method: str, behavior: Callable[[Any, Any], Awaitable[Any]]
    ) -> Callable[[Any, Any], Awaitable[Any]]:
        service, method = split_method(full_method)
        labels = (UNARY, service, method)
        started = self._metrics.server_started.labels(*labels)
        handled = self._metrics.server_handled
        handling = self._metrics.server_handling
        # Looked up once: labels() costs a lock and a dict lookup on every call.
        handled_ok = handled.labels(*labels, "OK")
        handling_ok = handling.labels(*labels, "OK")

        async def measured(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started.inc()
            current_method.set(method)
            begin = time.perf_counter()
            try:
                response = await behavior(request, context)
            except BaseException:
                status = context.code()
                code = CODE_NAMES.get(status, "Unknown") if status is not None else "Unknown"
                handled.labels(*labels, code).inc()
                handling.labels(*labels, code).observe(time.perf_counter() - begin)
                raise
            handled_ok.inc()
            handling_ok.observe(time.perf_counter() - begin)
            return response

        return measured


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
        self._metrics.client_started.labels(*labels).inc()
        begin = time.perf_counter()
        call = await continuation(client_call_details, request)
        try:
            code = CODE_NAMES.get(await call.code(), "Unknown")
        finally:
            elapsed = time.perf_counter() - begin
        self._metrics.client_handled.labels(*labels, code).inc()
        self._metrics.client_handling.labels(*labels, code).observe(elapsed)
        return call
