"""Which database errors mean "the database is down", as opposed to a bug."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# Errors that say the database could not be reached or answered too late. They become
# UNAVAILABLE (retryable); every other database error is a bug and stays INTERNAL.
# asyncpg raises its own on the request path; the SQLAlchemy ones come from migrations.
UNREACHABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    # "connection is closed", "pool is closing": the connection went away under us.
    asyncpg.InterfaceError,
    # "another operation is in progress" on a fresh request: an idle connection the server
    # was terminating (fast shutdown sends it a FATAL) was handed out before asyncpg saw it
    # close. Nothing was sent, so retrying elsewhere is safe (found by the outage test).
    asyncpg.exceptions.InternalClientError,
    OperationalError,
    InterfaceError,
    PoolTimeout,
)


# SQLSTATEs PostgreSQL answers with when it cannot serve this process right now: class 08
# connection exception, class 28 login refused (a rotated password), 53300
# too_many_connections, 57014 query_canceled (statement_timeout), 57P01 admin_shutdown,
# 57P02 crash_shutdown, 57P03 cannot_connect_now ("starting up" / "shutting down").
UNREACHABLE_SQLSTATES = ("08", "28", "53300", "57014", "57P01", "57P02", "57P03")


def is_unreachable(error: BaseException) -> bool:
    if isinstance(error, UNREACHABLE_ERRORS):
        return True
    driver_error: BaseException | None = error
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        driver_error = error.orig  # the driver's exception, which carries the SQLSTATE
    sqlstate = getattr(driver_error, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(UNREACHABLE_SQLSTATES)
