"""The one way our server interceptors wrap a unary method: built once, reused per call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]]


class UnaryWrappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Subclasses say what to wrap (``applies_to``) and how (``wrap``).

    grpc.aio asks the interceptors for the handler on every call; building the wrapper
    once per method keeps that to a dict lookup on the request path.
    """

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        cached = self._wrapped.get(details.method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None or not self.applies_to(details.method):
            return handler  # streams (health Watch, reflection) look after themselves
        wrapped = self.wrap(details.method, handler)
        self._wrapped[details.method] = wrapped
        return wrapped

    def applies_to(self, full_method: str) -> bool:
        return True

    def wrap(self, full_method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        raise NotImplementedError
