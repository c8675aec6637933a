"""The store's SQL and the Post entity agree on which columns come back, in which order."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest

from post_service.adapters.postgres import store
from post_service.domain.posts import Post

POST_QUERIES = [
    "GET_POST",
    "LIST_NEWEST",
    "LIST_OLDER_THAN",
    "LIST_BY_AUTHOR",
    "ADD_POST",
    "UPDATE_IF_AUTHOR",
    "DELETE_POST",
]


@pytest.mark.parametrize("name", POST_QUERIES)
def test_queries_returning_posts_select_posts_fields_in_order(name: str) -> None:
    sql: str = getattr(store, name)
    match = re.search(r"(?:SELECT|RETURNING) (.+?)(?: FROM |$)", sql)
    assert match is not None, sql
    columns = [column.strip() for column in match.group(1).split(",")]
    assert columns == [field.name for field in fields(Post)]
