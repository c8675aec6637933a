"""The post-service image itself: what it contains, and how its containers start, migrate,
report health, expose metrics and stop, all under the chart's hardening (see containers.py)."""

from __future__ import annotations

import json
import re
import tarfile
import tomllib
from io import BytesIO
from pathlib import Path

import grpc
import yaml

from devenv.docker import Docker
from devenv.dockercontext import build_context, copy_sources
from devenv.images import SERVICE_DOCKERFILE, build_service_image
from devenv.post_service_process import service_env
from devenv.postgres import LocalPostgres
from devenv.prometheus import LocalPrometheus
from post_service._generated.post.post_pb2_grpc import PostStub
from post_service.adapters.postgres.tables import SCHEMA_REVISION

from .conftest import service_container_env
from .containers import ServiceContainer, inspect, run_once, wait_for_health
from .test_service_contract import create

ROOT = Path(__file__).resolve().parents[2]
CHART_VALUES = yaml.safe_load((ROOT / "charts" / "post-service" / "values.yaml").read_text())
MB = 1_000_000


def image_config(docker: Docker, image: str) -> dict[str, object]:
    config: dict[str, object] = inspect(docker, image)["Config"]
    return config


# -- the build ------------------------------------------------------------------------------


def test_the_build_context_holds_only_the_files_the_dockerfile_copies() -> None:
    with tarfile.open(fileobj=BytesIO(build_context(SERVICE_DOCKERFILE, ROOT))) as tar:
        names = tar.getnames()
    sources = copy_sources(SERVICE_DOCKERFILE)
    assert {"pyproject.toml", "poetry.lock", "README.md", "src/post_service/cli.py"} <= set(names)
    outside = [
        name
        for name in names
        if name not in {"Dockerfile", ".dockerignore"}
        and not any(name == source or name.startswith(f"{source}/") for source in sources)
    ]
    assert outside == []
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".env"))]


def test_the_image_runs_as_the_charts_non_root_user(docker: Docker, service_image: str) -> None:
    config = image_config(docker, service_image)
    security = CHART_VALUES["securityContext"]
    assert config["User"] == f"{security['runAsUser']}:{security['runAsGroup']}" == "10001:10001"
    who = docker("run", "--rm", "--entrypoint", "id", service_image).stdout.split()
    assert who[:2] == ["uid=10001(postservice)", "gid=10001(postservice)"]
    ports = CHART_VALUES["ports"]
    assert set(config["ExposedPorts"]) == {f"{ports['grpc']}/tcp", f"{ports['metrics']}/tcp"}  # type: ignore[call-overload]


def test_the_runtime_has_no_pip_poetry_or_compilers(docker: Docker, service_image: str) -> None:
    tools = "pip pip3 poetry gcc cc c++ g++ clang make ld as"
    found = docker(
        "run", "--rm", "--entrypoint", "sh", service_image, "-c",
        f"for tool in {tools}; do command -v $tool; done; "
        "python -c 'import importlib.util as u; "
        'print(*[m for m in ("pip", "poetry", "setuptools", "wheel") if u.find_spec(m)])\'',
        check=False,
    )  # fmt: skip
    assert (found.stdout.strip(), found.stderr.strip()) == ("", "")


def test_every_module_has_bytecode_that_never_needs_rewriting(
    docker: Docker, service_image: str
) -> None:
    """The root filesystem is read-only: what is not compiled in the image is compiled again
    on every start. Unchecked-hash .pyc files (flags 1) stay valid whatever the files' mtimes."""
    found = docker(
        "run", "--rm", "--entrypoint", "python", service_image, "-c",
        "import pathlib, importlib.util as u; "
        "sources = list(pathlib.Path('/opt/venv/lib').rglob('*.py')); "
        "compiled = [pathlib.Path(u.cache_from_source(str(p))) for p in sources]; "
        "print(len(sources), sum(not c.exists() for c in compiled), "
        "*sorted({c.read_bytes()[4] for c in compiled if c.exists()}))",
    )  # fmt: skip
    sources, missing, *flags = map(int, found.stdout.split())
    assert sources > 500
    assert (missing, flags) == (0, [1])


def test_installed_packages_are_exactly_the_locked_versions(
    docker: Docker, service_image: str
) -> None:
    listing = docker(
        "run", "--rm", "--entrypoint", "python", service_image, "-c",
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))",
    )  # fmt: skip
    installed = {
        re.sub(r"[-_.]+", "-", name).lower(): version
        for name, version in json.loads(listing.stdout).items()
    }
    lock = tomllib.loads((ROOT / "poetry.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["package"] if "main" in p.get("groups", [])}
    assert installed.pop("post-service")
    assert {"grpcio", "asyncpg", "alembic", "uvloop"} <= installed.keys()
    assert {name: (version, locked.get(name)) for name, version in installed.items()} == {
        name: (version, version) for name, version in installed.items()
    }


def test_the_image_adds_less_than_120_mb_to_its_base(
    docker: Docker, service_image: str, base_image: str
) -> None:
    added = inspect(docker, service_image)["Size"] - inspect(docker, base_image)["Size"]
    assert 20 * MB < added < 120 * MB, f"{added / MB:.0f} MB"


def test_the_dockerfile_builds_with_buildkit_too(
    docker: Docker, service_image: str, base_image: str
) -> None:
    buildkit = build_service_image(docker, base_image, builder="buildkit")
    assert buildkit.endswith("-buildkit")
    keys = ("User", "Entrypoint", "Cmd", "Healthcheck", "ExposedPorts", "Env")
    legacy_config, buildkit_config = (
        image_config(docker, service_image),
        image_config(docker, buildkit),
    )
    assert {k: buildkit_config[k] for k in keys} == {k: legacy_config[k] for k in keys}


# -- migrate ----------------------------------------------------------------------------------


def test_migrate_in_a_hardened_container_brings_an_empty_database_to_head(
    docker: Docker, service_image: str, postgres: LocalPostgres
) -> None:
    name = "image_migrate"
    postgres.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', database="postgres")
    env = service_env(postgres.create_database(name))
    first = run_once(docker, service_image, "migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert (
        postgres.psql("SELECT version_num FROM alembic_version", database=name) == SCHEMA_REVISION
    )
    assert postgres.psql("SELECT to_regclass('posts') IS NOT NULL", database=name) == "t"
    again = run_once(docker, service_image, "migrate", env=env)
    assert again.returncode == 0, again.stderr


# -- the serving container ----------------------------------------------------------------


def test_dockers_healthcheck_reports_the_container_healthy(
    docker: Docker, service: ServiceContainer
) -> None:
    health = wait_for_health(docker, service.name, "healthy", timeout=90)
    assert health.get("Status") == "healthy", health
    assert health["Log"][-1]["ExitCode"] == 0


def test_prometheus_scrapes_the_containers_metrics_port(
    service: ServiceContainer, posts: PostStub
) -> None:
    create(posts, author=2)
    with LocalPrometheus([f"127.0.0.1:{service.metrics_port}"]) as prometheus:
        (up,) = prometheus.wait_for_result('up{job="post-service"} == 1')
        created = prometheus.wait_for_result(
            'grpc_server_handled_total{grpc_method="CreatePost",grpc_code="OK"} > 0'
        )
        info = prometheus.wait_for_result("post_service_build_info")
    assert up["value"][1] == "1"
    assert float(created[0]["value"][1]) >= 1
    assert info[0]["metric"]["version"]


def test_docker_stop_ends_the_service_with_exit_code_zero_within_the_grace_period(
    docker: Docker,
    service_image: str,
    image_db_url: str,
    tmp_path: Path,
) -> None:
    grace = CHART_VALUES["terminationGracePeriodSeconds"]
    env = service_container_env(image_db_url, "127.0.0.1:1")
    container = ServiceContainer(docker, service_image, env, tmp_path / "serve.log")
    try:
        container.start()
        with grpc.insecure_channel(container.addr) as channel:
            create(PostStub(channel), author=4)
        docker("stop", "--time", str(grace), container.name, timeout=grace + 30)
        assert container.process is not None
        assert container.process.wait(30) == 0, container.logs()
        state = inspect(docker, container.name)["State"]
        assert (state["ExitCode"], state["OOMKilled"]) == (0, False)
    finally:
        container.stop()
