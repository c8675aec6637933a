"""The store's SQL and the Post entity agree on which columns come back, in which order."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest

from post_service.adapters.postgres import store
from post_service.domain.posts import Post, PostSummary

ROW_TYPES = {
    "GET_POST": Post,
    "ADD_POST": Post,
    "UPDATE_IF_AUTHOR": Post,
    "DELETE_POST": Post,
    "LIST_NEWEST": PostSummary,
    "LIST_OLDER_THAN": PostSummary,
    "LIST_BY_AUTHOR": PostSummary,
}


@pytest.mark.parametrize(("name", "row_type"), ROW_TYPES.items())
def test_queries_select_the_fields_of_their_row_type_in_order(name: str, row_type: type) -> None:
    sql: str = getattr(store, name)
    match = re.search(r"RETURNING (.+)$", sql) or re.search(r"^SELECT (.+?) FROM ", sql)
    assert match is not None, sql
    columns = [column.strip() for column in match.group(1).split(",")]
    assert columns == [field.name for field in fields(row_type)]
