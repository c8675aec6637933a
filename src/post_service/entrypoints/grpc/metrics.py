"""gRPC RED metrics of the server: started, handled and latency per method and code, and
the responses that went out degraded (service/degradation.py)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from post_service.entrypoints.grpc.interceptor import UnaryWrappingInterceptor
from post_service.service.degradation import DegradationWatch
from post_service.telemetry.grpc_metrics import CODE_NAMES, UNARY, split_method
from post_service.telemetry.metrics import Metrics


class ServerMetricsInterceptor(UnaryWrappingInterceptor):
    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self._metrics = metrics

    def applies_to(self, full_method: str) -> bool:
        return not full_method.startswith("/grpc.health.")  # probes would drown real traffic

    def wrap(self, full_method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            self._measured(full_method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _measured(
        self, full_method: str, behavior: Callable[[Any, Any], Awaitable[Any]]
    ) -> Callable[[Any, Any], Awaitable[Any]]:
        service, method = split_method(full_method)
        labels = (UNARY, service, method)
        started = self._metrics.server.started.labels(*labels)
        handled = self._metrics.server.handled
        handling = self._metrics.server.handling
        # Looked up once: labels() costs a lock and a dict lookup on every call.
        handled_ok = handled.labels(*labels, "OK")
        handling_ok = handling.labels(*labels, "OK")
        degraded = self._metrics.degraded_responses.labels(service, method)

        async def measured(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started.inc()
            begin = time.perf_counter()
            with DegradationWatch() as watch:
                try:
                    response = await behavior(request, context)
                except BaseException:
                    status = context.code()
                    code = CODE_NAMES.get(status, "Unknown") if status is not None else "Unknown"
                    handled.labels(*labels, code).inc()
                    handling.labels(*labels, code).observe(time.perf_counter() - begin)
                    raise
                finally:
                    if watch.degraded:
                        degraded.inc()
            handled_ok.inc()
            handling_ok.observe(time.perf_counter() - begin)
            return response

        return measured
