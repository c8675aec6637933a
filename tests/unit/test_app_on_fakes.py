"""The whole app, wired by the real bootstrap over fake adapters: no PostgreSQL, no Kafka.

Proves the wiring from gRPC to the use cases and back (servicer, error mapping, health,
metrics) in well under a second; the real adapters are proven in tests/integration and e2e.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from post_service.bootstrap import Adapters, App, build_app
from post_service.config import DatabaseSettings, GrpcSettings, MetricsSettings, Settings
from post_service.domain.events import PostCreated
from post_service.service.ports_v2 import PostReaderV2, PostWriterV2
from tests.unit.fakes import FakeOutbox, FakePostStore, FakeUserDirectory


class NoStoreV2:
    """post.v2's store, which these tests never call: any use fails the test."""

    def reading(self) -> AbstractAsyncContextManager[PostReaderV2]:
        raise AssertionError("post.v2 is not called here")

    def transaction(self) -> AbstractAsyncContextManager[PostWriterV2]:
        raise AssertionError("post.v2 is not called here")

    async def page_token_key(self) -> bytes:
        raise AssertionError("post.v2 is not called here")


class Readiness:
    def __init__(self) -> None:
        self.problem: str | None = None

    async def __call__(self, timeout_seconds: float) -> str | None:
        return self.problem


@pytest.fixture
def store() -> FakePostStore:
    return FakePostStore()


@pytest.fixture
def readiness() -> Readiness:
    return Readiness()


@pytest.fixture
async def app(store: FakePostStore, readiness: Readiness) -> AsyncIterator[App]:
    settings = Settings(
        db=DatabaseSettings(url="postgresql+asyncpg://unused@127.0.0.1:1/none"),
        grpc=GrpcSettings(host="127.0.0.1", port=0),
        metrics=MetricsSettings(host="127.0.0.1", port=0),
    )
    fakes = Adapters(
        store=store,
        store_v2=NoStoreV2(),
        outbox=FakeOutbox([]),
        users=FakeUserDirectory(),
        readiness=readiness,
    )
    built = build_app(settings, adapters=fakes)
    await built.start()
    yield built
    await built.stop()
    gc.unfreeze()  # start() froze the start-up heap; leave the test process as it was


@pytest.fixture
async def channel(app: App) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as opened:
        yield opened


async def test_a_post_goes_through_the_real_wiring_to_the_store_and_back(
    channel: grpc.aio.Channel, store: FakePostStore
) -> None:
    posts = PostStub(channel)
    created = await posts.CreatePost(pb.PostCreateRequest(auth_id=7, title="t", body="b"))
    fetched = await posts.GetByIdPost(pb.PostGetByIdRequest(post_id=created.post_id))
    assert (fetched.title, fetched.username) == ("t", "user-7")
    assert [type(e) for e in store.data.events] == [PostCreated]


async def test_domain_errors_reach_the_caller_as_their_status(channel: grpc.aio.Channel) -> None:
    posts = PostStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await posts.GetByIdPost(pb.PostGetByIdRequest(post_id=404))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    created = await posts.CreatePost(pb.PostCreateRequest(auth_id=7, title="t", body="b"))
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await posts.DeletePost(pb.PostDeleteRequest(auth_id=8, post_id=created.post_id))
    assert foreign.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_readiness_follows_the_readiness_adapter(
    app: App, channel: grpc.aio.Channel, readiness: Readiness
) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    ask = health_pb2.HealthCheckRequest(service="post.Post")
    assert (await health.Check(ask)).status == health_pb2.HealthCheckResponse.SERVING
    readiness.problem = "schema at revision 0003, this build needs 0004: run post-service migrate"
    await app.health_monitor.check_once()
    assert (await health.Check(ask)).status == health_pb2.HealthCheckResponse.NOT_SERVING
