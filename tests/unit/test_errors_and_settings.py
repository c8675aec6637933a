from __future__ import annotations

import grpc
import pytest

from post_service.config import InvalidSettings, load_settings
from post_service.domain.errors import (
    DependencyUnavailable,
    InvalidPost,
    NotPostAuthor,
    PostNotFound,
    PostServiceError,
    UserNotFound,
)
from post_service.entrypoints.grpc.errors import status_of


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidPost("title", "must not be blank"), grpc.StatusCode.INVALID_ARGUMENT),
        (PostNotFound(1), grpc.StatusCode.NOT_FOUND),
        (UserNotFound("bob"), grpc.StatusCode.NOT_FOUND),
        (NotPostAuthor(1), grpc.StatusCode.PERMISSION_DENIED),
        (DependencyUnavailable("database"), grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_each_domain_error_has_its_status(error: PostServiceError, code: grpc.StatusCode) -> None:
    assert status_of(error) == code


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_URL", "postgresql+asyncpg://u:p@db:5432/post_db")
    monkeypatch.setenv("GRPC_PORT", "6000")
    monkeypatch.setenv("POSTS_MAX_PAGE_SIZE", "50")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    settings = load_settings()
    assert settings.grpc.port == 6000
    assert settings.posts.max_page_size == 50
    assert settings.kafka.enabled
    assert settings.user_service.addr == "user-service:50055"
    assert "p@db" not in repr(settings)


def test_every_bad_setting_is_reported_without_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_URL", "mysql://u:s3cret-pw@db/x")
    monkeypatch.setenv("USER_SERVICE_TIMEOUT_SECONDS", "-1")
    monkeypatch.setenv("LOG_LEVEL", "LOUD")
    with pytest.raises(InvalidSettings) as raised:
        load_settings()
    problems = "\n".join(raised.value.problems)
    assert "DB_URL: Value error, DB_URL must start with postgresql+asyncpg://" in problems
    assert "USER_SERVICE_TIMEOUT_SECONDS: Input should be greater than 0" in problems
    assert "LOG_LEVEL: Value error, LOG_LEVEL must be one of" in problems
    assert "s3cret-pw" not in problems
