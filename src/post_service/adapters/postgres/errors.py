"""Which database errors mean "the database is down", as opposed to a bug."""

from __future__ import annotations

import asyncio
import errno
import socket
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url
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
# connection exception, class 28 login refused (a rotated password), 3D000 the database
# does not exist (yet), 53300 too_many_connections, 57014 query_canceled (statement_timeout),
# 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now ("starting up" /
# "shutting down").
UNREACHABLE_SQLSTATES = ("08", "28", "3D000", "53300", "57014", "57P01", "57P02", "57P03")


# 42P01 undefined_table, 42703 undefined_column: the schema is older than this build.
SCHEMA_BEHIND_SQLSTATES = ("42P01", "42703")


def is_schema_behind(error: BaseException) -> bool:
    return getattr(error, "sqlstate", None) in SCHEMA_BEHIND_SQLSTATES


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


# --- Why a connection failed, in words an operator can act on -------------------------------

# Retrying cannot fix these: the password, the role or the database name is wrong.
_PERMANENT_SQLSTATES = ("28", "3D000")


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """Where DB_URL points, without the password: safe to log.

    One host, or several (``?host=db-1:5432&host=db-2:5432``) of which the driver takes the
    first that answers and suits ``wanted`` (``target_session_attrs``, e.g. read-write).
    """

    hosts: tuple[tuple[str, int], ...]
    database: str
    role: str
    wanted: str = "any"

    @classmethod
    def from_url(cls, url: str) -> DatabaseTarget:
        parsed = make_url(url)
        listed = parsed.query.get("host", ())
        specs = (listed,) if isinstance(listed, str) else tuple(listed)
        hosts = tuple(_host_and_port(spec) for spec in specs) or (
            (parsed.host or "localhost", parsed.port or 5432),
        )
        wanted = parsed.query.get("target_session_attrs", "any")
        return cls(
            hosts=hosts,
            database=parsed.database or "",
            role=parsed.username or "",
            wanted=wanted if isinstance(wanted, str) else wanted[-1],
        )

    @property
    def several(self) -> bool:
        return len(self.hosts) > 1

    @property
    def server(self) -> str:
        """The kind of server wanted, in words: "server", "read-write server", ..."""
        return "server" if self.wanted == "any" else f"{self.wanted} server"

    def __str__(self) -> str:
        return ", ".join(f"{host}:{port}" for host, port in self.hosts)


def _host_and_port(spec: str) -> tuple[str, int]:
    host, _, port = spec.rpartition(":") if ":" in spec else (spec, "", "")
    return host, int(port) if port.isdigit() else 5432


@dataclass(frozen=True, slots=True)
class ConnectFailure:
    reason: str
    retryable: bool


def explain_connect_failure(
    error: BaseException, target: DatabaseTarget, timeout_seconds: float
) -> ConnectFailure | None:
    """The cause of a failed connection, or None when ``error`` is not about connecting."""
    cause = _driver_error(error)
    sqlstate = getattr(cause, "sqlstate", None)
    if isinstance(sqlstate, str):
        server_says = str(cause)
        if sqlstate.startswith("28"):
            return ConnectFailure(
                f'authentication failed for role "{target.role}" at {target} ({server_says})',
                retryable=False,
            )
        if sqlstate == "3D000":
            return ConnectFailure(
                f'database "{target.database}" does not exist at {target}', retryable=False
            )
        if sqlstate.startswith(UNREACHABLE_SQLSTATES):
            return ConnectFailure(f"PostgreSQL at {target} refused: {server_says}", retryable=True)
        return None
    if isinstance(cause, asyncpg.exceptions.TargetServerAttributeNotMatched):
        return ConnectFailure(
            f"no {target.server} at {target}: the hosts answered, none is {target.wanted} "
            "(a standby not promoted yet?)",
            retryable=True,
        )
    if isinstance(cause, TimeoutError | asyncio.TimeoutError | PoolTimeout):
        return ConnectFailure(
            f"timed out connecting to {target} after {timeout_seconds:g} s", retryable=True
        )
    if target.several and isinstance(cause, OSError):
        # The driver tried each host in turn and reports only the last error it met.
        problem = _network_problem(cause)
        return ConnectFailure(
            f"no {target.server} reachable at {target} (last error: {problem})", retryable=True
        )
    if isinstance(cause, ConnectionRefusedError) or _all_refused(cause):
        return ConnectFailure(f"connection refused by {target}", retryable=True)
    if isinstance(cause, socket.gaierror):
        # Retried: a new Service's DNS name can take a moment to resolve.
        return ConnectFailure(f'host "{target.hosts[0][0]}" not found', retryable=True)
    if isinstance(cause, OSError):
        return ConnectFailure(f"cannot reach {target}: {cause.strerror or cause}", retryable=True)
    if isinstance(cause, UNREACHABLE_ERRORS):
        return ConnectFailure(f"connection to {target} lost ({type(cause).__name__})", True)
    return None


def _network_problem(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError) or _all_refused(error):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return "host not found"
    return str(error.strerror or error)


def _all_refused(error: BaseException) -> bool:
    # asyncpg tries every address a name resolves to (::1 and 127.0.0.1 for localhost) and
    # then raises one OSError("Multiple exceptions: [Errno 111] ..., [Errno 111] ...").
    text = str(error)
    return text.startswith("Multiple exceptions") and text.count("[Errno") == text.count(
        f"[Errno {errno.ECONNREFUSED}]"
    )


def is_permanent(error: BaseException) -> bool:
    sqlstate = getattr(_driver_error(error), "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_PERMANENT_SQLSTATES)


def _driver_error(error: BaseException) -> BaseException:
    """asyncpg's own exception (or the OSError) behind SQLAlchemy's or our wrappers."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(
            seen,
            asyncpg.PostgresError | OSError | asyncpg.exceptions.TargetServerAttributeNotMatched,
        ):
            return seen
        if isinstance(seen, DBAPIError) and seen.orig is not None:
            seen = seen.orig
        else:
            seen = seen.__cause__
    return error
