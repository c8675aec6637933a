"""The dev User-service stub image (deploy/dev/user-service-stub/), which the dev loop deploys:
hardened like the service, answering user_post.UserPost, and good enough for post-service."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from devenv.docker import Docker
from devenv.lifecycle import free_port
from post_service._generated.post.post_pb2_grpc import PostStub
from post_service._generated.user_post import user_post_pb2 as pb
from post_service._generated.user_post.user_post_pb2_grpc import UserPostStub

from .conftest import service_container_env
from .containers import Container, ServiceContainer, inspect, wait_for_health
from .test_service_contract import create

GRACE_SECONDS = 10


def wait_until_answering(stub: UserPostStub, container: Container, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            stub.GetByID(pb.GetByIdRequest(id=1), timeout=2)
            return
        except grpc.RpcError:
            assert container.process is not None
            if container.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the stub never answered:\n{container.logs()}") from None
            time.sleep(0.2)


def start_stub(docker: Docker, image: str, log: Path) -> tuple[Container, str]:
    """A stub container (the image's ENTRYPOINT serves) and its address."""
    addr = f"127.0.0.1:{free_port()}"
    return Container(docker, image, {"STUB_ADDR": addr}, log).start(), addr


@pytest.fixture(scope="module")
def stub_container(
    docker: Docker, stub_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Container, str]]:
    container, addr = start_stub(docker, stub_image, tmp_path_factory.mktemp("stub") / "stub.log")
    try:
        yield container, addr
    finally:
        container.stop()


@pytest.fixture(scope="module")
def user_posts(stub_container: tuple[Container, str]) -> Iterator[UserPostStub]:
    container, addr = stub_container
    with grpc.insecure_channel(addr) as channel:
        stub = UserPostStub(channel)
        wait_until_answering(stub, container)
        yield stub


def test_the_stub_image_runs_as_10001_without_pip_or_compilers(
    docker: Docker, stub_image: str
) -> None:
    assert inspect(docker, stub_image)["Config"]["User"] == "10001:10001"
    found = docker(
        "run", "--rm", "--entrypoint", "sh", stub_image, "-c",
        "id -u; for tool in pip pip3 gcc cc make; do command -v $tool; done; "
        "python -c 'import importlib.util as u; print(*[m for m in (\"pip\", \"grpc_tools\") "
        "if u.find_spec(m)])'",
        check=False,
    )  # fmt: skip
    assert found.stdout.split() == ["10001"], found.stdout + found.stderr


def test_the_hardened_stub_container_answers_the_user_post_contract(
    user_posts: UserPostStub,
) -> None:
    assert user_posts.GetByID(pb.GetByIdRequest(id=7), timeout=5).username == "user-7"
    users = user_posts.GetByIDs(pb.GetByIdsRequest(ids=[1, 2]), timeout=5).users
    assert dict(users) == {1: "user-1", 2: "user-2"}
    assert user_posts.GetByUsername(pb.GetByUsernameRequest(username="user-42"), timeout=5).id == 42
    with pytest.raises(grpc.RpcError) as unknown:
        user_posts.GetByUsername(pb.GetByUsernameRequest(username="alice"), timeout=5)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_dockers_healthcheck_reports_the_stub_healthy(
    docker: Docker, stub_container: tuple[Container, str], user_posts: UserPostStub
) -> None:
    health = wait_for_health(docker, stub_container[0].name, "healthy", timeout=60)
    assert health.get("Status") == "healthy", health
    assert health["Log"][-1]["ExitCode"] == 0


def test_the_service_container_names_authors_through_the_stub_container(
    docker: Docker,
    service_image: str,
    image_db_url: str,
    stub_container: tuple[Container, str],
    user_posts: UserPostStub,
    tmp_path: Path,
) -> None:
    env = service_container_env(image_db_url, stub_container[1])
    service = ServiceContainer(docker, service_image, env, tmp_path / "serve.log")
    try:
        service.start()
        with grpc.insecure_channel(service.addr) as channel:
            assert create(PostStub(channel), author=77).username == "user-77"
    finally:
        service.stop()


def test_docker_stop_ends_the_stub_with_exit_code_zero(
    docker: Docker, stub_image: str, tmp_path: Path
) -> None:
    stub, addr = start_stub(docker, stub_image, tmp_path / "stub.log")
    try:
        with grpc.insecure_channel(addr) as channel:
            wait_until_answering(UserPostStub(channel), stub)
        docker("stop", "--time", str(GRACE_SECONDS), stub.name, timeout=GRACE_SECONDS + 30)
        assert stub.process is not None
        assert stub.process.wait(30) == 0, stub.logs()
        assert inspect(docker, stub.name)["State"]["ExitCode"] == 0
    finally:
        stub.stop()
