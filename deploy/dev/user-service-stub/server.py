"""Dev-only stand-in for the User-service: implements user_post.UserPost.

Every user exists and is called "user-<id>"; GetByUsername accepts exactly those names.
Listens on STUB_ADDR (default 0.0.0.0:50055) until SIGTERM/SIGINT. ``server.py --check`` asks
the running stub for user 1 and exits 0 when it answers (the image's HEALTHCHECK). The modules
user_post_pb2/_grpc are generated from proto/user_post/user_post.proto when the image is built
(see the Dockerfile).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
from concurrent import futures

import grpc
from user_post import user_post_pb2, user_post_pb2_grpc

_NAME = re.compile(r"^user-(\d+)$")


def username(user_id: int) -> str:
    return f"user-{user_id}"


class UserPost(user_post_pb2_grpc.UserPostServicer):
    def GetByID(  # noqa: N802 - gRPC method name
        self, request: user_post_pb2.GetByIdRequest, context: grpc.ServicerContext
    ) -> user_post_pb2.UserUsername:
        return user_post_pb2.UserUsername(username=username(request.id))

    def GetByIDs(  # noqa: N802 - gRPC method name
        self, request: user_post_pb2.GetByIdsRequest, context: grpc.ServicerContext
    ) -> user_post_pb2.UsersMapResponse:
        return user_post_pb2.UsersMapResponse(users={i: username(i) for i in request.ids})

    def GetByUsername(  # noqa: N802 - gRPC method name
        self, request: user_post_pb2.GetByUsernameRequest, context: grpc.ServicerContext
    ) -> user_post_pb2.UserId:
        match = _NAME.match(request.username)
        if match is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no user {request.username!r}")
        return user_post_pb2.UserId(id=int(match.group(1)))


def serve(addr: str) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    user_post_pb2_grpc.add_UserPostServicer_to_server(UserPost(), server)
    port = server.add_insecure_port(addr)
    server.start()
    return server, port


def check(addr: str) -> int:
    target = f"127.0.0.1:{addr.rpartition(':')[2]}"  # runs next to the stub, in its container
    with grpc.insecure_channel(target) as channel:
        stub = user_post_pb2_grpc.UserPostStub(channel)
        try:
            reply = stub.GetByID(user_post_pb2.GetByIdRequest(id=1), timeout=2)
        except grpc.RpcError as error:
            sys.stderr.write(f"user-service stub at {target}: {error.code().name}\n")
            return 1
    return 0 if reply.username == username(1) else 1


def main() -> int:
    addr = os.environ.get("STUB_ADDR", "0.0.0.0:50055")
    if sys.argv[1:] == ["--check"]:
        return check(addr)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server, port = serve(addr)
    logging.info("user-service stub listening on %s (port %d)", addr, port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=5).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
