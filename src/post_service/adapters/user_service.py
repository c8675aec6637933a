"""User-service over gRPC: the ``UserDirectory`` port. One channel per process."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import grpc

from post_service._generated.user_post import user_post_pb2 as pb
from post_service._generated.user_post.user_post_pb2_grpc import UserPostStub
from post_service.config import UserServiceSettings
from post_service.domain.errors import DependencyUnavailable

CHANNEL_OPTIONS = (
    # Notice a silently dropped connection (a node gone) within seconds, not minutes.
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_reconnect_backoff_ms", 5_000),
)


class GrpcUserDirectory:
    def __init__(self, channel: grpc.aio.Channel, timeout_seconds: float) -> None:
        self._stub = UserPostStub(channel)
        self._timeout = timeout_seconds

    async def usernames(self, user_ids: Collection[int]) -> Mapping[int, str]:
        request = pb.GetByIdsRequest(ids=sorted(user_ids))
        try:
            response = await self._stub.GetByIDs(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            raise DependencyUnavailable("user-service") from error
        return dict(response.users)

    async def user_id(self, username: str) -> int | None:
        request = pb.GetByUsernameRequest(username=username)
        try:
            response = await self._stub.GetByUsername(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise DependencyUnavailable("user-service") from error
        return int(response.id) or None  # id 0 is proto3's "not set": no such user


def open_channel(
    settings: UserServiceSettings, interceptors: Sequence[grpc.aio.ClientInterceptor] = ()
) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        settings.addr, options=CHANNEL_OPTIONS, interceptors=list(interceptors)
    )
