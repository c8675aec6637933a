"""A client run inside the cluster, in a pod of the post-service image (from a ConfigMap).

It calls the service through its Service DNS name, as the API gateway would, and prints its
findings as JSON lines; the tests read them with ``kubectl logs``. Commands:

- ``contract``: the v1 calls with usernames from the User-service stub, the ``post.created``
  event on Kafka, and a ``delete`` message removing the author's posts.
- ``calls``: GetByIdPost from several long-lived channels (like a gateway's workers), paced,
  until ``/tmp/stop`` exists or the time limit passes; a progress line every second.
- ``load``: GetGroupPost as fast as the workers go, for CPU load; same stop rules.
- ``reach``: whether a health check is answered at all within ``--seconds`` (NetworkPolicy).

Only the standard library, grpcio and aiokafka from the image are used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from grpc_health.v1 import health_pb2, health_pb2_grpc

from post_service._generated.post import post_pb2, post_pb2_grpc

STOP_FILE = Path("/tmp/stop")

# The retry policy a gateway should give the service's reads (README, "Retries"). Besides
# UNAVAILABLE it retries CANCELLED: a call that reached a pod just as it shut down, before a
# handler took it, comes back CANCELLED from gRPC core (grpc/grpc#41785), about once in
# seven rollouts here. Reads are idempotent, so retrying them is always safe.
READ_RETRIES = json.dumps(
    {
        "methodConfig": [
            {
                "name": [
                    {"service": "post.Post", "method": "GetByIdPost"},
                    {"service": "post.Post", "method": "GetGroupPost"},
                ],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"],
                },
            }
        ]
    }
)


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def contract(target: str, kafka: str, author: int) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        await connected(channel)
        stub = post_pb2_grpc.PostStub(channel)
        created = await stub.CreatePost(
            post_pb2.PostCreateRequest(auth_id=author, title="In-cluster", body="Hello"),
            timeout=10,
        )
        fetched = await stub.GetByIdPost(
            post_pb2.PostGetByIdRequest(post_id=created.post_id), timeout=10
        )
        by_name = await stub.GetByIdUserPost(
            post_pb2.PostGetByIdUserRequest(username=f"user-{author}"), timeout=10
        )
        emit(
            step="v1",
            created_username=created.username,
            fetched_title=fetched.title,
            listed_ids=[p.post_id for p in by_name.posts],
            post_id=created.post_id,
        )
        event = await _find_event(kafka, created.post_id)
        emit(step="event", event_type=event.get("event_type"), post=event.get("post"))
        producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait("delete", json.dumps({"id": author}).encode())
        finally:
            await producer.stop()
        remaining = -1
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            listed = await stub.GetByIdUserPost(
                post_pb2.PostGetByIdUserRequest(auth_id=author), timeout=10
            )
            remaining = len(listed.posts)
            if remaining == 0:
                break
            await asyncio.sleep(0.5)
        emit(step="deleted", remaining=remaining)


async def connected(channel: grpc.aio.Channel, seconds: float = 30) -> None:
    """Wait for the first connection: a NetworkPolicy controller admits a new pod's address a
    moment after the pod starts, and connections before that are refused."""
    await asyncio.wait_for(channel.channel_ready(), seconds)


async def reach(target: str, seconds: float) -> None:
    """Try a health check until one is answered or ``seconds`` pass; report which."""
    attempts, error = 0, ""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        attempts += 1
        async with grpc.aio.insecure_channel(target) as channel:
            try:
                response = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service="post.Post"), timeout=2
                )
                emit(step="reach", served=True, status=response.status, attempts=attempts)
                return
            except grpc.aio.AioRpcError as failure:
                error = failure.code().name
        await asyncio.sleep(1)
    emit(step="reach", served=False, last_error=error, attempts=attempts)


async def _find_event(kafka: str, post_id: int) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(
        "post_events",
        bootstrap_servers=kafka,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    event = json.loads(record.value)
                    if event.get("post", {}).get("id") == post_id:
                        return dict(event)
    finally:
        await consumer.stop()
    return {}


async def calls(target: str, method: str, workers: int, pause: float, seconds: float) -> None:
    outcomes: Counter[str] = Counter()
    # A subchannel pool per channel: otherwise gRPC shares one connection among them all.
    options = [
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", READ_RETRIES),
    ]
    channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(workers)]
    for channel in channels:
        await connected(channel)
    setup = post_pb2_grpc.PostStub(channels[0])
    seed = await setup.CreatePost(
        post_pb2.PostCreateRequest(auth_id=11, title="load", body="x" * 200), timeout=10
    )
    deadline = time.monotonic() + seconds

    def running() -> bool:
        return time.monotonic() < deadline and not STOP_FILE.exists()

    async def worker(channel: grpc.aio.Channel) -> None:
        stub = post_pb2_grpc.PostStub(channel)
        while running():
            try:
                if method == "get":
                    await stub.GetByIdPost(
                        post_pb2.PostGetByIdRequest(post_id=seed.post_id), timeout=5
                    )
                else:
                    await stub.GetGroupPost(post_pb2.PostGetGroupRequest(limit=100), timeout=5)
                outcomes["OK"] += 1
            except grpc.aio.AioRpcError as error:
                outcomes[error.code().name] += 1
                emit(
                    step="failure",
                    code=error.code().name,
                    details=error.details(),
                    at=round(time.time(), 3),
                    after_ok=outcomes["OK"],
                )
            if pause:
                await asyncio.sleep(pause)

    async def progress() -> None:
        while running():
            emit(step="progress", **outcomes)
            await asyncio.sleep(1)

    emit(step="started", post_id=seed.post_id)
    await asyncio.gather(progress(), *(worker(c) for c in channels))
    for channel in channels:
        await channel.close()
    emit(step="done", **outcomes)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["contract", "calls", "load", "reach"])
    parser.add_argument("--target", default=os.environ.get("TARGET", "post-service:50054"))
    parser.add_argument("--kafka", default="kafka:9092")
    parser.add_argument("--author", type=int, default=7)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--pause", type=float, default=0.05)
    parser.add_argument("--seconds", type=float, default=300)
    args = parser.parse_args()
    if args.command == "contract":
        asyncio.run(contract(args.target, args.kafka, args.author))
    elif args.command == "reach":
        asyncio.run(reach(args.target, args.seconds))
    else:
        method = "get" if args.command == "calls" else "list"
        asyncio.run(calls(args.target, method, args.workers, args.pause, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
