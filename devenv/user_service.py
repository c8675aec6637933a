"""A stand-in for User-service (another team's service): a real gRPC server in the test process."""

from __future__ import annotations

import threading
import time
from concurrent import futures
from dataclasses import dataclass, field

import grpc

from devenv.lifecycle import free_port
from post_service._generated.user_post import user_post_pb2 as pb
from post_service._generated.user_post import user_post_pb2_grpc as pb_grpc


@dataclass
class UserServiceCalls:
    by_ids: list[list[int]] = field(default_factory=list)
    by_username: list[str] = field(default_factory=list)
    metadata: list[dict[str, str]] = field(default_factory=list)


class _Servicer(pb_grpc.UserPostServicer):
    def __init__(self, stand_in: StandInUserService) -> None:
        self._stand_in = stand_in

    def GetByIDs(
        self, request: pb.GetByIdsRequest, context: grpc.ServicerContext
    ) -> pb.UsersMapResponse:
        self._stand_in.record(context)
        self._stand_in.calls.by_ids.append(list(request.ids))
        self._stand_in.wait()
        users = self._stand_in.users
        return pb.UsersMapResponse(users={i: users[i] for i in request.ids if i in users})

    def GetByID(self, request: pb.GetByIdRequest, context: grpc.ServicerContext) -> pb.UserUsername:
        self._stand_in.record(context)
        self._stand_in.wait()
        return pb.UserUsername(username=self._stand_in.users.get(request.id, ""))

    def GetByUsername(
        self, request: pb.GetByUsernameRequest, context: grpc.ServicerContext
    ) -> pb.UserId:
        self._stand_in.record(context)
        self._stand_in.calls.by_username.append(request.username)
        self._stand_in.wait()
        for user_id, name in self._stand_in.users.items():
            if name == request.username:
                return pb.UserId(id=user_id)
        context.abort(grpc.StatusCode.NOT_FOUND, "user not found")
        raise AssertionError("unreachable")


class StandInUserService:
    """Knows users 1..999 as ``user-<id>``; can be made slow, or stopped and restarted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.users: dict[int, str] = {i: f"user-{i}" for i in range(1, 1000)}
        self.delay_seconds = 0.0
        self.calls = UserServiceCalls()
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> StandInUserService:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        pb_grpc.add_UserPostServicer_to_server(_Servicer(self), server)
        server.add_insecure_port(self.addr)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(0).wait()
            self._server = None

    def wait(self) -> None:
        if self.delay_seconds:
            time.sleep(self.delay_seconds)

    def record(self, context: grpc.ServicerContext) -> None:
        with self._lock:
            self.calls.metadata.append({m.key: m.value for m in context.invocation_metadata()})

    def reset(self) -> None:
        self.delay_seconds = 0.0
        self.calls = UserServiceCalls()
        if self._server is None:
            self.start()
