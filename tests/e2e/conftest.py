"""The real `post-service serve` process, a stand-in User-service, and a gRPC client."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from devenv.postgres import LocalPostgres
from devenv.user_service import StandInUserService
from post_service._generated.post import post_pb2_grpc
from tests.support.post_service_process import PostServiceProcess, service_env

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def user_service() -> Iterator[StandInUserService]:
    stand_in = StandInUserService().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(autouse=True)
def _user_service_healthy(user_service: StandInUserService) -> None:
    user_service.reset()


@pytest.fixture(scope="session")
def service(
    db_url: str, user_service: StandInUserService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PostServiceProcess]:
    env = service_env(
        db_url,
        USER_SERVICE_ADDR=user_service.addr,
        USER_SERVICE_TIMEOUT_SECONDS="0.3",
        # Tests rename users between calls; the cache is tested on its own.
        USER_SERVICE_CACHE_TTL_SECONDS="0",
    )
    process = PostServiceProcess(env, tmp_path_factory.mktemp("service") / "serve.log").start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def channel(service: PostServiceProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(service.addr) as opened:
        yield opened


@pytest.fixture
def posts(channel: grpc.Channel) -> post_pb2_grpc.PostStub:
    return post_pb2_grpc.PostStub(channel)


@pytest.fixture
def empty_posts_table(postgres: LocalPostgres, db_url: str) -> None:
    postgres.psql("TRUNCATE posts, outbox RESTART IDENTITY")
