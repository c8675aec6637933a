"""Reliability fixtures: the session service of tests/conftest.py, plus a private PostgreSQL.

The private cluster is one a test may stop, kill and restart without disturbing the session
database every other test shares. It has a login role whose password is recognisable
(``support.SECRET_PASSWORD``), so any test can check that the password never leaks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv.post_service_process import PostServiceProcess, run_cli, service_env
from devenv.postgres import LocalPostgres
from devenv.user_service import StandInUserService
from tests.reliability import support
from tests.support.service_env import env_with_user_service


@pytest.fixture(autouse=True)
def _user_service_healthy(user_service: StandInUserService) -> None:
    user_service.reset()  # the session's stand-in (tests/conftest.py), healthy for each test


@pytest.fixture(scope="session")
def private_postgres_cluster() -> Iterator[LocalPostgres]:
    with LocalPostgres() as cluster:
        url = support.add_secret_role(cluster)
        migrated = run_cli("migrate", env=service_env(url))
        assert migrated.returncode == 0, migrated.stderr
        yield cluster


@pytest.fixture
def private_postgres(private_postgres_cluster: LocalPostgres) -> Iterator[LocalPostgres]:
    """The private cluster, running; started again afterwards if the test left it down."""
    support.ensure_running(private_postgres_cluster)
    yield private_postgres_cluster
    support.ensure_running(private_postgres_cluster)


@pytest.fixture(scope="session")
def private_db_url(private_postgres_cluster: LocalPostgres) -> str:
    """DB_URL for the private cluster, carrying the recognisable password."""
    return support.private_database_url(private_postgres_cluster)


@pytest.fixture(scope="session")
def private_service(
    private_postgres_cluster: LocalPostgres,
    private_db_url: str,
    user_service: StandInUserService,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PostServiceProcess]:
    """`post-service serve` on the private cluster, logging at DEBUG (every line is evidence
    for the secrets tests), with a short statement timeout so slow-database tests are quick."""
    env = env_with_user_service(
        private_db_url,
        user_service.addr,
        LOG_LEVEL="DEBUG",
        DB_STATEMENT_TIMEOUT_SECONDS="1",
        DB_POOL_SIZE="10",
    )
    process = PostServiceProcess(env, tmp_path_factory.mktemp("private") / "serve.log")
    support.ensure_running(private_postgres_cluster)
    process.start()
    yield process
    process.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    measured = support.figures()
    if not measured:
        return
    terminalreporter.section("reliability figures")
    for name, value in sorted(measured.items()):
        terminalreporter.write_line(f"{name}: {value}")
    saved: Path | None = support.save_figures()
    if saved is not None:
        terminalreporter.write_line(f"(saved to {saved})")
