"""DB_URL with several hosts: accepted in one form, read the same way by SQLAlchemy (migrate)
and by the asyncpg pool (serve), and named in full when connecting fails."""

from __future__ import annotations

import errno

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from post_service.adapters.postgres.errors import DatabaseTarget, explain_connect_failure
from post_service.adapters.postgres.pool import asyncpg_dsn
from post_service.config import DatabaseSettings, InvalidSettings, load_settings
from post_service.domain.errors import DependencyUnavailable

PASSWORD = "pw-7f3a"  # made up, and looked for in every message
TWO_HOSTS = (
    f"postgresql+asyncpg://post:{PASSWORD}@/post_db"
    "?host=db-1:5432&host=db-2:5433&target_session_attrs=read-write"
)


def problems_with(url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DB_URL", url)
    with pytest.raises(InvalidSettings) as raised:
        load_settings()
    return "\n".join(raised.value.problems)


def test_one_host_and_several_read_write_hosts_are_accepted() -> None:
    single = f"postgresql+asyncpg://post:{PASSWORD}@db:5432/post_db"
    assert DatabaseSettings(url=single).url.get_secret_value() == single
    assert DatabaseSettings(url=TWO_HOSTS).url.get_secret_value() == TWO_HOSTS


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            f"postgresql+asyncpg://post:{PASSWORD}@/post_db?host=db-1:5432&host=db-2:5432",
            "DB_URL with several hosts needs target_session_attrs=read-write (or primary)",
        ),
        (
            f"postgresql+asyncpg://post:{PASSWORD}@db-1:5432,db-2:5432/post_db",
            "DB_URL: several hosts go in host= parameters, not in the address",
        ),
        (
            f"postgresql+asyncpg://post:{PASSWORD}@/post_db?host=db-1&host=db-2:5432"
            "&target_session_attrs=read-write",
            "DB_URL: each host= parameter is name:port",
        ),
        (
            f"postgresql+asyncpg://post:{PASSWORD}@db-0:5432/post_db?host=db-1:5432",
            "DB_URL: give the host either after @ or as host= parameters, not both",
        ),
        (
            f"postgresql+asyncpg://post:{PASSWORD}@db:5432/post_db?target_session_attrs=rw",
            "DB_URL: target_session_attrs must be one of any, primary, standby",
        ),
    ],
)
def test_a_db_url_in_another_form_is_refused_saying_which_form_to_use(
    url: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    problems = problems_with(url, monkeypatch)
    assert problem in problems
    assert PASSWORD not in problems


def test_the_pool_gets_every_host_in_asyncpgs_own_form() -> None:
    # asyncpg would keep only the last of repeated host= parameters.
    assert asyncpg_dsn(TWO_HOSTS) == (
        f"postgresql://post:{PASSWORD}@db-1:5432,db-2:5433/post_db?target_session_attrs=read-write"
    )
    single = f"postgresql+asyncpg://post:{PASSWORD}@db:5432/post_db?ssl=require"
    assert asyncpg_dsn(single) == f"postgresql://post:{PASSWORD}@db:5432/post_db?ssl=require"


async def test_migrate_connects_to_every_host_with_the_same_session_attrs() -> None:
    engine = create_async_engine(TWO_HOSTS)
    try:
        _, arguments = engine.dialect.create_connect_args(make_url(TWO_HOSTS))
    finally:
        await engine.dispose()
    assert arguments["host"] == ["db-1", "db-2"]
    assert arguments["port"] == [5432, 5433]
    assert arguments["target_session_attrs"] == "read-write"


def test_the_target_names_every_host_and_what_is_wanted_never_the_password() -> None:
    target = DatabaseTarget.from_url(TWO_HOSTS)
    assert str(target) == "db-1:5432, db-2:5433"
    assert target.wanted == "read-write"
    assert (target.database, target.role) == ("post_db", "post")
    assert PASSWORD not in repr(target)
    single = DatabaseTarget.from_url("postgresql+asyncpg://post:pw@db/post_db")
    assert str(single) == "db:5432"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
            "no read-write server reachable at db-1:5432, db-2:5433 "
            "(last error: connection refused)",
        ),
        (
            asyncpg.exceptions.TargetServerAttributeNotMatched("none match"),
            "no read-write server at db-1:5432, db-2:5433: the hosts answered, "
            "none is read-write (a standby not promoted yet?)",
        ),
        (
            asyncpg.InvalidPasswordError("password authentication failed for user post"),
            'authentication failed for role "post" at db-1:5432, db-2:5433 '
            "(password authentication failed for user post)",
        ),
        (TimeoutError(), "timed out connecting to db-1:5432, db-2:5433 after 2 s"),
    ],
)
def test_a_failed_connection_to_several_hosts_is_explained_naming_them_all(
    error: Exception, reason: str
) -> None:
    wrapped = DependencyUnavailable("database")
    wrapped.__cause__ = error  # as the pool hands it on
    failure = explain_connect_failure(wrapped, DatabaseTarget.from_url(TWO_HOSTS), 2)
    assert failure is not None
    assert failure.reason == reason
    assert PASSWORD not in failure.reason


def test_one_refusing_host_is_still_named_as_before() -> None:
    target = DatabaseTarget.from_url("postgresql+asyncpg://post:pw@db:5432/post_db")
    failure = explain_connect_failure(ConnectionRefusedError(errno.ECONNREFUSED, "x"), target, 2)
    assert failure is not None
    assert failure.reason == "connection refused by db:5432"
