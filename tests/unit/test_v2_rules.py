"""post.v2's domain rules without I/O: page tokens, etags, update masks, request ids."""

from __future__ import annotations

import base64
import re
from dataclasses import fields

import pytest

from post_service.adapters.postgres import store_v2
from post_service.domain.errors import InvalidPost
from post_service.domain.listing import PostFilter, resolve_page_size, validate_batch
from post_service.domain.page_tokens import PageTokens
from post_service.domain.paging import PageLimits
from post_service.domain.posts import PostContent
from post_service.domain.versions import (
    PostChange,
    Revision,
    VersionedPost,
    etag_of,
    parse_etag,
    parse_request_id,
    request_fingerprint,
    resolve_change,
)

KEY = bytes(range(32))
SCOPE = PostFilter(author_id=5).scope()


def refused_field(error: pytest.ExceptionInfo[InvalidPost]) -> str:
    return error.value.field


def test_a_page_token_opens_to_its_position_for_its_scope_only() -> None:
    tokens = PageTokens(KEY)
    token = tokens.issue(SCOPE, ">i", 1234)
    assert tokens.open(SCOPE, ">i", token) == (1234,)
    assert "1234" not in token
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    for scope in (PostFilter(author_id=6).scope(), PostFilter().scope(), "SearchPosts:5:x"):
        with pytest.raises(InvalidPost) as refused:
            tokens.open(scope, ">i", token)
        assert refused_field(refused) == "page_token"


def test_altered_truncated_or_foreign_tokens_are_refused() -> None:
    tokens = PageTokens(KEY)
    raw = bytearray(base64.urlsafe_b64decode(tokens.issue(SCOPE, ">i", 99) + "=="))
    raw[2] ^= 0x01  # the position, now 99 ± 2^16: the tag no longer matches
    altered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    foreign = PageTokens(b"x" * 32).issue(SCOPE, ">i", 99)
    for token in (altered, foreign, tokens.issue(SCOPE, ">i", 99)[:-4], "", "é", "A" * 300):
        with pytest.raises(InvalidPost):
            tokens.open(SCOPE, ">i", token)
    with pytest.raises(InvalidPost):  # the right bytes read with another layout
        tokens.open(SCOPE, ">fi", tokens.issue(SCOPE, ">i", 99))


def test_a_search_position_round_trips_its_float4_rank_exactly() -> None:
    tokens = PageTokens(KEY)
    rank = 0.060792710632085800  # a float4 value, as PostgreSQL's ts_rank returns
    (opened_rank, opened_id) = tokens.open("s", ">fi", tokens.issue("s", ">fi", rank, 7))
    assert opened_rank == pytest.approx(rank, rel=1e-7)
    assert opened_id == 7


def test_etags_name_versions_and_anything_else_is_invalid() -> None:
    assert parse_etag(etag_of(3)) == 3
    assert parse_etag('W/"3"') == 3
    assert parse_etag("") is None
    for bad in ("3", '"0"', '"-1"', '"abc"', '"99999999999"'):
        with pytest.raises(InvalidPost) as refused:
            parse_etag(bad)
        assert refused_field(refused) == "etag"


def test_an_update_mask_picks_and_validates_fields() -> None:
    assert resolve_change(["title"], "T", "", 100) == PostChange("T", None)
    assert resolve_change([], "", "B", 100) == PostChange(None, "B")
    assert resolve_change(["*"], "T", "B", 100) == PostChange("T", "B")
    for paths, title, body, field in (
        (["author"], "T", "B", "update_mask"),
        ([], "", "", "update_mask"),
        (["body"], "T", "", "body"),
        (["title"], "x" * 256, "", "title"),
    ):
        with pytest.raises(InvalidPost) as refused:
            resolve_change(paths, title, body, 100)
        assert refused_field(refused) == field


def test_request_ids_are_uuids_and_fingerprints_tell_content_apart() -> None:
    assert parse_request_id("") is None
    assert str(parse_request_id("0b5e4c7e-9a1e-4a3c-8d6f-2f0e5b1c9a77")).startswith("0b5e")
    with pytest.raises(InvalidPost):
        parse_request_id("not-a-uuid")
    same = request_fingerprint(1, PostContent("a", "bc"))
    assert same == request_fingerprint(1, PostContent("a", "bc"))
    assert same != request_fingerprint(1, PostContent("ab", "c"))
    assert same != request_fingerprint(2, PostContent("a", "bc"))


def test_page_sizes_and_batches_follow_v1s_limits() -> None:
    limits = PageLimits(default_size=20, max_size=100)
    assert [resolve_page_size(n, limits) for n in (0, 5, 1000)] == [20, 5, 100]
    with pytest.raises(InvalidPost):
        resolve_page_size(-1, limits)
    assert validate_batch([1] * 100) == [1] * 100
    for ids in ([1] * 101, [1, 0], []):
        with pytest.raises(InvalidPost):
            validate_batch(ids)


@pytest.mark.parametrize(
    ("sql", "row_type"),
    [
        (store_v2.GET_VERSIONED, VersionedPost),
        (store_v2.list_sql(True, True, True, True), VersionedPost),
        (store_v2.REVISIONS, Revision),
    ],
)
def test_v2_queries_select_the_fields_of_their_row_type_in_order(sql: str, row_type: type) -> None:
    names = [column.rsplit(" AS ", 1)[-1].strip() for column in _select_list(sql)]
    assert names == [field.name for field in fields(row_type)]


def _select_list(sql: str) -> list[str]:
    """The columns between SELECT and the FROM at parenthesis depth 0."""
    assert sql.startswith("SELECT ")
    columns: list[str] = []
    depth, current = 0, ""
    for index, char in enumerate(sql[len("SELECT ") :], start=len("SELECT ")):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and sql.startswith(" FROM ", index):
            return [*columns, current]
        if char == "," and depth == 0:
            columns.append(current)
            current = ""
        else:
            current += char
    raise AssertionError(f"no FROM in {sql}")
