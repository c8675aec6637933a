"""The one place that turns domain errors into gRPC statuses.

v1 (``post.Post``) answers a status code and a plain message, as deployed. post.v2 answers
the same code and message plus google.rpc details (AIP-193), in the
``grpc-status-details-bin`` trailer: always an ErrorInfo whose ``reason`` says what went
wrong, and a BadRequest (which field) or ResourceInfo (which post) where they apply.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from post_service.domain.errors import (
    DependencyUnavailable,
    EtagMismatch,
    InvalidPost,
    NotPostAuthor,
    PostNotFound,
    PostServiceError,
    PostsNotFound,
    RequestIdReused,
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
    # Raised by post.v2 only.
    PostsNotFound: grpc.StatusCode.NOT_FOUND,
    EtagMismatch: grpc.StatusCode.ABORTED,
    RequestIdReused: grpc.StatusCode.ALREADY_EXISTS,
}

# post.v2: ErrorInfo.reason of each error (UPPER_SNAKE_CASE, stable: clients switch on it).
REASON_OF: dict[type[PostServiceError], str] = {
    InvalidPost: "INVALID_ARGUMENT",
    PostNotFound: "POST_NOT_FOUND",
    PostsNotFound: "POSTS_NOT_FOUND",
    UserNotFound: "USER_NOT_FOUND",
    NotPostAuthor: "NOT_POST_AUTHOR",
    UserDeleted: "USER_DELETED",
    EtagMismatch: "ETAG_MISMATCH",
    RequestIdReused: "REQUEST_ID_REUSED",
    DependencyUnavailable: "DEPENDENCY_UNAVAILABLE",
}
ERROR_DOMAIN = "post-service"
POST_RESOURCE = "post.v2.Post"
RICH_ERRORS_PREFIX = "/post.v2."
MALFORMED_REQUEST = "request is not a valid message (corrupt wire format or invalid UTF-8)"

UnaryBehavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def status_of(error: PostServiceError) -> grpc.StatusCode:
    for error_type in type(error).__mro__:
        code = STATUS_OF.get(error_type)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def rich_status(error: PostServiceError) -> grpc.Status:
    """post.v2's answer to a domain error: code, message and google.rpc details."""
    metadata, details = _details_of(error)
    info = error_details_pb2.ErrorInfo(
        reason=_reason_of(error), domain=ERROR_DOMAIN, metadata=metadata
    )
    return _status(status_of(error), str(error), [info, *details])


def _details_of(error: PostServiceError) -> tuple[dict[str, str], list[Message]]:
    """ErrorInfo metadata, and the other details that say what the error is about."""
    match error:
        case InvalidPost():
            violation = error_details_pb2.BadRequest.FieldViolation(
                field=error.field, description=error.problem
            )
            return {"field": error.field}, [
                error_details_pb2.BadRequest(field_violations=[violation])
            ]
        case PostNotFound():
            return {"post_id": str(error.post_id)}, [_post_resource(error.post_id)]
        case PostsNotFound():
            missing = ",".join(map(str, error.post_ids))
            return {"post_ids": missing}, [_post_resource(post_id) for post_id in error.post_ids]
        case NotPostAuthor():
            return {"post_id": str(error.post_id)}, []
        case UserDeleted():
            return {"user_id": str(error.user_id)}, []
        case EtagMismatch():
            return {"post_id": str(error.post_id), "current_etag": error.current_etag}, []
        case RequestIdReused():
            return {"request_id": error.request_id}, []
        case DependencyUnavailable():
            return {"dependency": error.dependency}, []
    return {}, []


def _reason_of(error: PostServiceError) -> str:
    for error_type in type(error).__mro__:
        if (reason := REASON_OF.get(error_type)) is not None:
            return reason
    return "INTERNAL"


def _post_resource(post_id: int) -> error_details_pb2.ResourceInfo:
    return error_details_pb2.ResourceInfo(
        resource_type=POST_RESOURCE, resource_name=str(post_id), description="does not exist"
    )


def _status(code: grpc.StatusCode, message: str, details: list[Message]) -> grpc.Status:
    packed = []
    for detail in details:
        wrapped = any_pb2.Any()
        wrapped.Pack(detail)
        packed.append(wrapped)
    proto = status_pb2.Status(code=code.value[0], message=message, details=packed)
    return rpc_status.to_status(proto)


class DomainErrorInterceptor(UnaryWrappingInterceptor):
    """Answers domain errors with their status; anything else is a bug: INTERNAL, logged."""

    def wrap(self, full_method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            _mapping_errors(
                handler.unary_unary,
                handler.request_deserializer,
                rich=full_method.startswith(RICH_ERRORS_PREFIX),
            ),
            # Decoded in `guarded`: an undecodable message is the caller's fault, not UNKNOWN.
            request_deserializer=None,
            response_serializer=handler.response_serializer,
        )


def _mapping_errors(
    behavior: UnaryBehavior, deserialize: Callable[[bytes], Any] | None, *, rich: bool
) -> UnaryBehavior:
    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if deserialize is not None:
            try:
                request = deserialize(request)
            except DecodeError:
                if rich:
                    await _abort(context, rich_status(InvalidPost("request", MALFORMED_REQUEST)))
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, MALFORMED_REQUEST)
        try:
            return await behavior(request, context)
        except PostServiceError as error:
            if rich:
                await _abort(context, rich_status(error))
            await context.abort(status_of(error), str(error))
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("unexpected error while handling an RPC")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")

    return guarded


async def _abort(context: grpc.aio.ServicerContext, status: grpc.Status) -> None:
    await context.abort(status.code, status.details, status.trailing_metadata)
