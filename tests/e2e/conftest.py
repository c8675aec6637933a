"""The real `post-service serve` process, a stand-in User-service, and a gRPC client."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator

import grpc
import pytest

from devenv.kafka import LocalKafka
from devenv.post_service_process import PostServiceProcess
from devenv.postgres import LocalPostgres
from devenv.user_service import StandInUserService
from post_service._generated.post.post_pb2_grpc import PostStub
from tests.support.kafka_client import Topics, create_topics
from tests.support.service_env import env_with_user_service

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _user_service_healthy(user_service: StandInUserService) -> None:
    user_service.reset()


@pytest.fixture
def empty_posts_table(postgres: LocalPostgres, db_url: str) -> None:
    postgres.psql("TRUNCATE posts, outbox RESTART IDENTITY CASCADE")  # and what refers to posts


# --- a Kafka-enabled service per test module, on fresh topics and a fresh database ----------


@pytest.fixture(scope="module")
def topics(kafka: LocalKafka) -> Topics:
    names = Topics()
    asyncio.run(
        create_topics(
            kafka.bootstrap_servers,
            names.events,
            names.user_deleted,
            names.admin_delete,
            names.dead_letters,
        )
    )
    return names


@pytest.fixture(scope="module")
def kafka_db(migrated_database: Callable[[str], str]) -> str:
    return migrated_database(f"kafka_{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
def kafka_service_env(
    kafka_db: str, kafka: LocalKafka, topics: Topics, user_service: StandInUserService
) -> dict[str, str]:
    return env_with_user_service(
        kafka_db,
        user_service.addr,
        KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap_servers,
        KAFKA_USER_DELETION_BATCH_SIZE="3",
        KAFKA_RETRY_BACKOFF_MAX_SECONDS="1",
        OUTBOX_POLL_INTERVAL_SECONDS="0.1",
        **topics.env(),
    )


@pytest.fixture(scope="module")
def kafka_service(
    kafka_service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PostServiceProcess]:
    process = PostServiceProcess(kafka_service_env, tmp_path_factory.mktemp("kafka") / "serve.log")
    yield process.start()
    process.stop()


@pytest.fixture(scope="module")
def stub(kafka_service: PostServiceProcess) -> Iterator[PostStub]:
    with grpc.insecure_channel(kafka_service.addr) as channel:
        yield PostStub(channel)
