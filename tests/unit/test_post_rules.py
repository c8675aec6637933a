from __future__ import annotations

import pytest

from post_service.domain.errors import InvalidPost
from post_service.domain.paging import Page, PageLimits, resolve_page
from post_service.domain.posts import require_id, validate_content, validate_username

LIMITS = PageLimits(default_size=20, max_size=100)


def test_valid_content_passes_unchanged() -> None:
    content = validate_content("  Title ", "Body\nwith lines", max_body_chars=100)
    assert (content.title, content.body) == ("  Title ", "Body\nwith lines")


@pytest.mark.parametrize(
    ("title", "body", "field", "problem"),
    [
        ("", "b", "title", "must not be blank"),
        (" \u3000\t", "b", "title", "must not be blank"),
        ("t" * 256, "b", "title", "must be at most 255 characters, got 256"),
        ("t", "", "body", "must not be blank"),
        ("t", "b" * 11, "body", "must be at most 10 characters, got 11"),
        ("a\x00b", "b", "title", "must not contain NUL characters"),
        ("t", "\x00", "body", "must not contain NUL characters"),
        ("t", "x\ud800", "body", "must be valid UTF-8 text"),
    ],
)
def test_invalid_content_names_the_field_and_the_problem(
    title: str, body: str, field: str, problem: str
) -> None:
    with pytest.raises(InvalidPost) as raised:
        validate_content(title, body, max_body_chars=10)
    assert (raised.value.field, raised.value.problem) == (field, problem)


def test_limits_count_characters_not_bytes() -> None:
    assert validate_content("é" * 255, "🚀" * 10, max_body_chars=10).title == "é" * 255


@pytest.mark.parametrize("bad", [0, -1, -(2**31)])
def test_ids_must_be_positive(bad: int) -> None:
    with pytest.raises(InvalidPost, match="post_id: must be a positive id"):
        require_id("post_id", bad)


def test_username_with_nul_is_invalid() -> None:
    with pytest.raises(InvalidPost, match="username"):
        validate_username("bob\x00")


@pytest.mark.parametrize(
    ("limit", "last_id", "expected"),
    [
        (0, 0, Page(size=20, before_id=None)),
        (1, 0, Page(size=1, before_id=None)),
        (100, 7, Page(size=100, before_id=7)),
        (101, 0, Page(size=100, before_id=None)),
        (2**31 - 1, 2**31 - 1, Page(size=100, before_id=2**31 - 1)),
    ],
)
def test_page_defaults_and_caps(limit: int, last_id: int, expected: Page) -> None:
    assert resolve_page(limit, last_id, LIMITS) == expected


@pytest.mark.parametrize(("limit", "last_id", "field"), [(-1, 0, "limit"), (5, -1, "last_id")])
def test_negative_paging_values_are_invalid(limit: int, last_id: int, field: str) -> None:
    with pytest.raises(InvalidPost) as raised:
        resolve_page(limit, last_id, LIMITS)
    assert raised.value.field == field
