"""The images built for real, and containers of them serving the session's real PostgreSQL.

The first session on a machine installs docker.io, may start dockerd, builds the base (the
official image if it is here or pullable, else the mmdebstrap stand-in) and both images: a few
minutes, with progress on stderr. Later sessions find the images by their content tags.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest

from devenv.docker import Docker, ensure_docker
from devenv.images import build_service_image, build_stub_image, ensure_base_image
from devenv.post_service_process import service_env
from devenv.postgres import LocalPostgres
from devenv.user_service import StandInUserService
from tests.support.service_env import env_with_user_service

from .containers import ServiceContainer, run_once


@pytest.fixture(scope="session")
def docker() -> Docker:
    return ensure_docker()


@pytest.fixture(scope="session")
def base_image(docker: Docker) -> str:
    return ensure_base_image(docker)


@pytest.fixture(scope="session")
def service_image(docker: Docker, base_image: str) -> str:
    return build_service_image(docker, base_image)


@pytest.fixture(scope="session")
def stub_image(docker: Docker, base_image: str) -> str:
    return build_stub_image(docker, base_image)


@pytest.fixture(scope="session")
def image_database(postgres: LocalPostgres) -> str:
    """The name of an empty database of the image tests' own."""
    name = f"image_{uuid.uuid4().hex[:8]}"
    postgres.create_database(name)
    return name


@pytest.fixture(scope="session")
def image_db_url(
    docker: Docker, service_image: str, postgres: LocalPostgres, image_database: str
) -> str:
    """That database, migrated by `post-service migrate` in a hardened container."""
    url = postgres.url.rsplit("/", 1)[0] + f"/{image_database}"
    migrated = run_once(docker, service_image, "migrate", env=service_env(url))
    assert migrated.returncode == 0, migrated.stderr
    return url


@pytest.fixture(autouse=True)
def _user_service_healthy(user_service: StandInUserService) -> None:
    user_service.reset()


def service_container_env(db_url: str, user_service_addr: str) -> dict[str, str]:
    # The cache is off because the contract tests count User-service calls.
    return env_with_user_service(db_url, user_service_addr, USER_SERVICE_CACHE_TTL_SECONDS="0")


@pytest.fixture(scope="session")
def service(
    docker: Docker,
    service_image: str,
    image_db_url: str,
    user_service: StandInUserService,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceContainer]:
    """`post-service serve` in a hardened container, for the whole session."""
    env = service_container_env(image_db_url, user_service.addr)
    log = tmp_path_factory.mktemp("image") / "serve.log"
    container = ServiceContainer(docker, service_image, env, log)
    try:
        yield container.start()
    finally:
        container.stop()


@pytest.fixture(scope="session")
def channel(service: ServiceContainer) -> Iterator[grpc.Channel]:
    """The container's channel. Redefined here, not inherited from tests/conftest.py: pytest
    keeps one value a session for a session-scoped fixture, so when e2e and image tests run
    in one session the inherited ``channel`` would still reach the e2e tier's process. (The
    function-scoped ``posts`` is inherited: it is made again for every test, on this one.)"""
    with grpc.insecure_channel(service.addr) as opened:
        yield opened


@pytest.fixture
def empty_posts_table(
    postgres: LocalPostgres, image_database: str, service: ServiceContainer
) -> None:
    # CASCADE: tables that refer to posts (revisions, ...) empty with it.
    postgres.psql("TRUNCATE posts, outbox RESTART IDENTITY CASCADE", database=image_database)
