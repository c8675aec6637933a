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

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Mapping

import grpc
import uvloop
from google.protobuf.message import Message

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


# What each post.Post RPC answers, whatever it is asked.
ANSWERS: dict[str, Message] = {
    "CreatePost": ONE_POST,
    "DeletePost": EMPTY,
    "GetGroupPost": PAGE,
    "GetByIdPost": ONE_POST,
    "GetByIdUserPost": AUTHOR_PAGE,
    "PutPost": ONE_POST,
}


class CeilingServicer:
    """An attribute per RPC of ``answers``: an async handler returning that RPC's answer.

    Registered with the generated ``add_PostServicer_to_server``, like the service's servicer,
    so requests and answers go through the same generated (de)serializers and handler tables;
    an RPC missing from ``answers`` fails the registration.
    """

    def __init__(self, answers: Mapping[str, Message]) -> None:
        for rpc, answer in answers.items():
            setattr(self, rpc, _answering(answer))


def _answering(
    answer: Message,
) -> Callable[[Message, grpc.aio.ServicerContext], Awaitable[Message]]:
    async def handler(request: Message, context: grpc.aio.ServicerContext) -> Message:
        return answer

    return handler


async def serve(host: str, port: int) -> None:
    await serve_until_signalled(
        lambda server: pb_grpc.add_PostServicer_to_server(CeilingServicer(ANSWERS), server),
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
