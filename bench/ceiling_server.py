"""The ceiling: a minimal grpc.aio server for the same ``post.Post`` service, constant answers.

No database, no User-service, no interceptors: what is left is grpc.aio and protobuf on this
machine, so the real service's throughput divided by this one's is the share that our code
(and its dependencies) leaves of what Python gRPC can do at all. Responses have the sizes the
real service sends for the benchmark's data set (bodies of the data set's mean length, 20 posts
per GetGroupPost page, 100 per GetByIdUserPost).

``python -m bench.ceiling_server --port N [--event-loop uvloop|asyncio]`` serves on
127.0.0.1:N until SIGTERM or SIGINT, on the same event loop as the service it is compared with.
It also serves grpc.health.v1 (SERVING once started) so the harness can time its start.
"""

# method names come from the proto

from __future__ import annotations

import argparse
import asyncio

import grpc
import uvloop

from bench.dataset import body_text
from bench.serving import serve_until_signalled
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post import post_pb2_grpc as pb_grpc

PAGE_SIZE = 20
AUTHOR_PAGE_SIZE = 100


def sample_post(post_id: int) -> pb.PostOutResponse:
    return pb.PostOutResponse(
        post_id=post_id,
        title=f"Thread {post_id}: notes on topic {post_id % 211}",
        body=body_text(post_id),
        username=f"user-{1 + post_id % 1000}",
    )


ONE_POST = sample_post(54_321)
PAGE = pb.PostListResponse(posts=[sample_post(99_000 + i) for i in range(PAGE_SIZE)])
AUTHOR_PAGE = pb.PostListResponse(posts=[sample_post(1_000 * i + 7) for i in range(100)])
EMPTY = pb.Empty()


class CeilingServicer(pb_grpc.PostServicer):
    async def CreatePost(
        self, request: pb.PostCreateRequest, context: grpc.aio.ServicerContext
    ) -> pb.PostOutResponse:
        return ONE_POST

    async def DeletePost(
        self, request: pb.PostDeleteRequest, context: grpc.aio.ServicerContext
    ) -> pb.Empty:
        return EMPTY

    async def GetGroupPost(
        self, request: pb.PostGetGroupRequest, context: grpc.aio.ServicerContext
    ) -> pb.PostListResponse:
        return PAGE

    async def GetByIdPost(
        self, request: pb.PostGetByIdRequest, context: grpc.aio.ServicerContext
    ) -> pb.PostOutResponse:
        return ONE_POST

    async def GetByIdUserPost(
        self, request: pb.PostGetByIdUserRequest, context: grpc.aio.ServicerContext
    ) -> pb.PostListResponse:
        return AUTHOR_PAGE

    async def PutPost(
        self, request: pb.PostPutRequest, context: grpc.aio.ServicerContext
    ) -> pb.PostOutResponse:
        return ONE_POST


async def serve(host: str, port: int) -> None:
    await serve_until_signalled(
        lambda server: pb_grpc.add_PostServicer_to_server(CeilingServicer(), server),
        host,
        port,
        serving=("", "post.Post"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--event-loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args()
    if args.event_loop == "uvloop":
        uvloop.run(serve(args.host, args.port))
    else:
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
