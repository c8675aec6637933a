"""A stand-in User-service for the benchmark: grpc.aio, answers at once, no bookkeeping.

devenv.user_service.StandInUserService is a thread-pool server inside the test process that
records every call; under load that costs more than the service being measured. This one is a
separate process (the harness pins it with the load generator, off the server's core) that
knows users 1..USERS as ``user-<id>``, as the benchmark's data set expects.

``python -m bench.user_stand_in --port N [--users 1000]`` serves on 127.0.0.1:N until SIGTERM.
"""

# method names come from the proto

from __future__ import annotations

import argparse
import asyncio

import grpc

from bench.serving import serve_until_signalled
from post_service._generated.user_post import user_post_pb2 as pb
from post_service._generated.user_post import user_post_pb2_grpc as pb_grpc

PREFIX = "user-"


class StandInUsers(pb_grpc.UserPostServicer):
    def __init__(self, users: int) -> None:
        self._users = users
        self._names = {i: f"{PREFIX}{i}" for i in range(1, users + 1)}

    async def GetByIDs(
        self, request: pb.GetByIdsRequest, context: grpc.aio.ServicerContext
    ) -> pb.UsersMapResponse:
        names = self._names
        return pb.UsersMapResponse(users={i: names[i] for i in request.ids if i in names})

    async def GetByID(
        self, request: pb.GetByIdRequest, context: grpc.aio.ServicerContext
    ) -> pb.UserUsername:
        return pb.UserUsername(username=self._names.get(request.id, ""))

    async def GetByUsername(
        self, request: pb.GetByUsernameRequest, context: grpc.aio.ServicerContext
    ) -> pb.UserId:
        name: str = request.username
        number = name.removeprefix(PREFIX)
        if name.startswith(PREFIX) and number.isdigit() and 1 <= int(number) <= self._users:
            return pb.UserId(id=int(number))
        await context.abort(grpc.StatusCode.NOT_FOUND, "user not found")
        raise AssertionError("unreachable")


async def serve(host: str, port: int, users: int) -> None:
    await serve_until_signalled(
        lambda server: pb_grpc.add_UserPostServicer_to_server(StandInUsers(users), server),
        host,
        port,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.user_stand_in", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.users))


if __name__ == "__main__":
    main()
