"""Session-wide real servers: PostgreSQL, Kafka, the stand-in User-service, the service itself."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import grpc
import pytest

from devenv.apt import NO_INSTALL_VARIABLE
from devenv.kafka import LocalKafka
from devenv.post_service_process import PostServiceProcess, run_cli, service_env
from devenv.postgres import LocalPostgres
from devenv.user_service import StandInUserService
from post_service._generated.post import post_pb2_grpc
from tests.support.service_env import env_with_user_service


def pytest_configure(config: pytest.Config) -> None:
    # Fixtures find their tools; installing them is `make setup`'s job (devenv/setup.py).
    os.environ[NO_INSTALL_VARIABLE] = "1"


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    with LocalPostgres() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def user_service() -> Iterator[StandInUserService]:
    """The stand-in User-service (a real gRPC server), one for the session."""
    stand_in = StandInUserService().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="session")
def kafka() -> Iterator[LocalKafka]:
    """One real Kafka broker (KRaft) for the session."""
    with LocalKafka() as broker:
        yield broker


@pytest.fixture(scope="session")
def db_url(postgres: LocalPostgres) -> str:
    """The main test database, migrated to head by the real `post-service migrate`."""
    result = run_cli("migrate", env=service_env(postgres.url))
    assert result.returncode == 0, result.stderr
    return postgres.url


@pytest.fixture(scope="session")
def migrated_template(postgres: LocalPostgres) -> str:
    """A database migrated once by the real `post-service migrate`, to clone others from."""
    url = postgres.create_database("migrated_template")
    result = run_cli("migrate", env=service_env(url))
    assert result.returncode == 0, result.stderr
    return url.rsplit("/", 1)[1]


@pytest.fixture(scope="session")
def migrated_database(postgres: LocalPostgres, migrated_template: str) -> Callable[[str], str]:
    """Makes a database at the schema's head by copying the template: no migration run."""

    def create(name: str) -> str:
        return postgres.create_database(name, template=migrated_template)

    return create


@pytest.fixture
def fresh_database(postgres: LocalPostgres, request: pytest.FixtureRequest) -> str:
    """An empty database of its own, for tests that need a schema-less or private one."""
    name = "t_" + request.node.name.lower().replace("[", "_").replace("]", "")[:50]
    postgres.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', database="postgres")
    return postgres.create_database(name)


# --- the session's `post-service serve` (e2e and reliability tests share this one) -----------


@pytest.fixture(scope="session")
def service(
    db_url: str, user_service: StandInUserService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PostServiceProcess]:
    env = env_with_user_service(
        db_url,
        user_service.addr,
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
