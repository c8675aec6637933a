"""Every setting the service reads, from the environment (or a `.env` file).

Settings are grouped by the part of the service they configure; each group reads
the environment variables with its prefix (``DB_URL`` is ``DatabaseSettings.url``).
One ``Settings`` is built at start-up by the CLI and passed down. The only other
readers of the environment are the standard OTEL_* variables (telemetry/tracing.py),
the `healthcheck` command's default port (GRPC_PORT, cli.py) and the developers' own
`alembic` runs (schema_migrations/env.py, DB_URL).
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import SplitResult, parse_qs, urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["InvalidSettings", "Settings", "load_settings"]


def _group(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=prefix, env_file=".env", extra="ignore", frozen=True, case_sensitive=False
    )


class DatabaseSettings(BaseSettings):
    model_config = _group("DB_")

    url: SecretStr = Field(
        description="postgresql+asyncpg://user:password@host:5432/post_db, or with several "
        "hosts: postgresql+asyncpg://user:password@/post_db"
        "?host=db-1:5432&host=db-2:5432&target_session_attrs=read-write"
    )
    # A streaming standby of DB_URL's primary (or CloudNativePG's <cluster>-ro Service) for the
    # reads; unset, every read goes to the primary. Rules: adapters/postgres/replica.py.
    read_url: SecretStr | None = Field(
        None,
        description="postgresql+asyncpg://user:password@replica:5432/post_db",
    )
    # The most connections one process opens (per pool); idle ones close after five minutes.
    pool_size: int = Field(20, ge=1, le=400)
    connect_timeout_seconds: float = Field(2.0, gt=0, le=60)
    statement_timeout_seconds: float = Field(5.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _asyncpg_url(cls, value: SecretStr) -> SecretStr:
        # Each message says what is wrong without echoing the URL: it carries the password.
        _check_url("DB_URL", value.get_secret_value(), for_writes=True)
        return value

    @field_validator("read_url")
    @classmethod
    def _asyncpg_read_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None  # DB_READ_URL="" (a chart's empty value) is the same as unset
        _check_url("DB_READ_URL", value.get_secret_value(), for_writes=False)
        return value


def _check_url(name: str, url: str, *, for_writes: bool) -> None:
    if not url.startswith("postgresql+asyncpg://"):
        raise ValueError(f"{name} must start with postgresql+asyncpg://")
    _check_hosts(name, urlsplit(url), for_writes=for_writes)


# asyncpg's target_session_attrs; with several hosts, writes need the primary.
SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")
SESSION_ATTRS_FOR_WRITES = ("read-write", "primary")


def _check_hosts(name: str, url: SplitResult, *, for_writes: bool) -> None:
    """One host in the address (``@db:5432/post_db``), or one or more as ``host=name:port``
    parameters after the database name, the form both SQLAlchemy and the pool read."""
    in_address = url.netloc.rpartition("@")[2]
    query = parse_qs(url.query, keep_blank_values=True)
    listed = query.get("host", [])
    if "," in in_address:
        raise ValueError(
            f"{name}: several hosts go in host= parameters, not in the address: "
            "postgresql+asyncpg://user:password@/post_db?host=db-1:5432&host=db-2:5432"
            "&target_session_attrs=read-write"
        )
    if listed and in_address:
        raise ValueError(f"{name}: give the host either after @ or as host= parameters, not both")
    if "port" in query or any(not re.fullmatch(r"[^:,/]+:\d+", host) for host in listed):
        raise ValueError(
            f"{name}: each host= parameter is name:port (host=db-1:5432); no port= parameter"
        )
    attrs = query.get("target_session_attrs", ["any"])[-1]
    if attrs not in SESSION_ATTRS:
        raise ValueError(f"{name}: target_session_attrs must be one of {', '.join(SESSION_ATTRS)}")
    if for_writes and len(listed) > 1 and attrs not in SESSION_ATTRS_FOR_WRITES:
        raise ValueError(
            "DB_URL with several hosts needs target_session_attrs=read-write (or primary), "
            "so that writes always find the primary"
        )


class GrpcSettings(BaseSettings):
    model_config = _group("GRPC_")

    # The pod's gRPC port must be reachable from the cluster network.
    host: str = "0.0.0.0"  # noqa: S104  # nosec B104
    port: int = Field(50054, ge=0, le=65535)
    max_receive_message_bytes: int = Field(1024 * 1024, ge=1024)
    max_connection_age_seconds: float = Field(300.0, ge=0)
    max_connection_age_grace_seconds: float = Field(30.0, ge=0)


class UserServiceSettings(BaseSettings):
    model_config = _group("USER_SERVICE_")

    addr: str = "user-service:50055"
    timeout_seconds: float = Field(0.3, gt=0, le=30)
    cache_ttl_seconds: float = Field(60.0, ge=0)
    cache_size: int = Field(10_000, ge=0)


class PostSettings(BaseSettings):
    model_config = _group("POSTS_")

    default_page_size: int = Field(20, ge=1)
    max_page_size: int = Field(100, ge=1)
    max_body_chars: int = Field(20_000, ge=1)

    @model_validator(mode="after")
    def _default_fits_max(self) -> PostSettings:
        if self.default_page_size > self.max_page_size:
            raise ValueError("POSTS_DEFAULT_PAGE_SIZE must not exceed POSTS_MAX_PAGE_SIZE")
        return self


class MetricsSettings(BaseSettings):
    model_config = _group("METRICS_")

    # Scraped by Prometheus from the monitoring namespace.
    host: str = "0.0.0.0"  # noqa: S104  # nosec B104
    port: int = Field(9464, ge=0, le=65535)


class KafkaSettings(BaseSettings):
    model_config = _group("KAFKA_")

    bootstrap_servers: str = ""
    consumer_group: str = "post-service"
    user_deleted_topic: str = "delete"
    admin_delete_post_topic: str = "admin_delete_post"
    dead_letter_topic: str = "post_service_dlq"
    post_events_topic: str = "post_events"
    max_message_bytes: int = Field(64 * 1024, ge=16)
    user_deletion_batch_size: int = Field(500, ge=1, le=10_000)
    request_timeout_seconds: float = Field(10.0, gt=0, le=300)
    retry_backoff_max_seconds: float = Field(10.0, gt=0, le=300)

    @property
    def enabled(self) -> bool:
        return bool(self.bootstrap_servers.strip())


class OutboxSettings(BaseSettings):
    model_config = _group("OUTBOX_")

    poll_interval_seconds: float = Field(0.2, gt=0)
    batch_size: int = Field(200, ge=1, le=5_000)
    retention_hours: float = Field(24.0, gt=0)


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    shutdown_grace_seconds: float = Field(20.0, ge=0)
    health_check_interval_seconds: float = Field(1.0, gt=0)
    log_level: str = "INFO"
    # uvloop cut a quarter of the CPU per request (docs/benchmarks.md); "asyncio" is the
    # way back should it ever misbehave.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level


class Settings(BaseModel):
    """All settings; tests build one directly with the groups they need."""

    model_config = {"frozen": True}

    db: DatabaseSettings
    grpc: GrpcSettings = Field(default_factory=GrpcSettings)
    user_service: UserServiceSettings = Field(default_factory=UserServiceSettings)
    posts: PostSettings = Field(default_factory=PostSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)


class InvalidSettings(Exception):
    """Some settings are wrong; ``problems`` has one line per setting, naming its variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_settings() -> Settings:
    """Read every group from the environment, reporting every bad setting at once."""
    groups: dict[str, BaseSettings] = {}
    problems: list[str] = []
    for name, field in Settings.model_fields.items():
        group = field.annotation
        if not (isinstance(group, type) and issubclass(group, BaseSettings)):
            raise TypeError(f"Settings.{name} is not a settings group")
        try:
            groups[name] = group()
        except ValidationError as error:
            problems += _describe(group.model_config.get("env_prefix", ""), error)
    if problems:
        raise InvalidSettings(problems)
    return Settings.model_validate(groups)


def _describe(prefix: str, error: ValidationError) -> list[str]:
    # include_input=False: the rejected value may be a secret (DB_URL carries a password).
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        field = "_".join(str(part) for part in problem["loc"]).upper()
        variable = prefix + field if field else prefix.rstrip("_") + " settings"
        lines.append(f"{variable}: {problem['msg']}")
    return lines
