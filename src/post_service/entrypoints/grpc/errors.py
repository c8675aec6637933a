"""The one place that turns domain errors into gRPC statuses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from post_service.domain.errors import (
    DependencyUnavailable,
    InvalidPost,
    NotPostAuthor,
    PostNotFound,
    PostServiceError,
    UserDeleted,
    UserNotFound,
)
from post_service.entrypoints.grpc.interceptor import UnaryWrappingInterceptor

log = logging.getLogger(__name__)

STATUS_OF: dict[type[PostServiceError], grpc.StatusCode] = {
    InvalidPost: grpc.StatusCode.INVALID_ARGUMENT,
    PostNotFound: grpc.StatusCode.NOT_FOUND,
    UserNotFound: grpc.StatusCode.NOT_FOUND,
    NotPostAuthor: grpc.StatusCode.PERMISSION_DENIED,
    UserDeleted: grpc.StatusCode.PERMISSION_DENIED,
    DependencyUnavailable: grpc.StatusCode.UNAVAILABLE,
}

UnaryBehavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def status_of(error: PostServiceError) -> grpc.StatusCode:
    for error_type in type(error).__mro__:
        code = STATUS_OF.get(error_type)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


class DomainErrorInterceptor(UnaryWrappingInterceptor):
    """Answers domain errors with their status; anything else is a bug: INTERNAL, logged."""

    def wrap(self, full_method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            _mapping_errors(handler.unary_unary, handler.request_deserializer),
            # Decoded in `guarded`: an undecodable message is the caller's fault, not UNKNOWN.
            request_deserializer=None,
            response_serializer=handler.response_serializer,
        )


def _mapping_errors(
    behavior: UnaryBehavior, deserialize: Callable[[bytes], Any] | None
) -> UnaryBehavior:
    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if deserialize is not None:
            try:
                request = deserialize(request)
            except DecodeError:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "request is not a valid message (corrupt wire format or invalid UTF-8)",
                )
        try:
            return await behavior(request, context)
        except PostServiceError as error:
            await context.abort(status_of(error), str(error))
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("unexpected error while handling an RPC")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")

    return guarded
