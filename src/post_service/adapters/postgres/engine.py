"""The one engine (and connection pool) per process, and which errors mean "database down"."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from post_service.config import DatabaseSettings
from post_service.domain.errors import DependencyUnavailable

# Errors that say the database could not be reached or answered too late. They become
# UNAVAILABLE (retryable); every other database error is a bug and stays INTERNAL.
UNREACHABLE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeout,
    OSError,
    asyncio.TimeoutError,
)


# SQLSTATEs PostgreSQL answers with when it cannot serve this process right now (asyncpg
# raises them as PostgresError, which SQLAlchemy wraps as a plain DBAPIError): class 08
# connection exception, class 28 login refused (a rotated password), 53300 too_many_connections,
# 57014 query_canceled (statement_timeout), 57P01 admin_shutdown, 57P02 crash_shutdown,
# 57P03 cannot_connect_now ("starting up" / "shutting down").
UNREACHABLE_SQLSTATES = ("08", "28", "53300", "57014", "57P01", "57P02", "57P03")


def is_unreachable(error: BaseException) -> bool:
    if isinstance(error, UNREACHABLE_ERRORS):
        return True
    driver_error: BaseException | None = error
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        driver_error = error.orig  # the driver's exception, which carries the SQLSTATE
    # Errors while connecting reach us unwrapped, as asyncpg's own PostgresError.
    sqlstate = getattr(driver_error, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(UNREACHABLE_SQLSTATES)


@asynccontextmanager
async def unavailable_when_unreachable() -> AsyncIterator[None]:
    """Turns "database down" errors into the domain's retryable ``DependencyUnavailable``."""
    try:
        yield
    except Exception as error:
        if is_unreachable(error):
            raise DependencyUnavailable("database") from error
        raise


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    statement_timeout_ms = int(settings.statement_timeout_seconds * 1000)
    return create_async_engine(
        settings.url.get_secret_value(),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.connect_timeout_seconds,
        # A dead connection is detected on use and the pool invalidated; pre-ping would
        # cost a round trip on every request to find the same thing.
        pool_pre_ping=False,
        # Parameters (post bodies) never reach SQLAlchemy's error messages or logs.
        hide_parameters=True,
        connect_args={
            "timeout": settings.connect_timeout_seconds,
            "command_timeout": settings.statement_timeout_seconds + 1,
            "server_settings": {
                "application_name": "post-service",
                "statement_timeout": str(statement_timeout_ms),
            },
        },
    )
