"""EXPLAIN (ANALYZE, BUFFERS) of every request-path statement, on the data set as loaded.

The statements are the service's own constants (store.py, store_v2.py and the ListPosts and
SearchPosts builders), run through asyncpg as the service runs them: bound parameters, one
statement each, writes inside a transaction that is rolled back. ``seq_scans`` names the
tables a plan reads whole; for the request path it must stay empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from dataclasses import dataclass

import asyncpg

from post_service.adapters.postgres import store as v1
from post_service.adapters.postgres import store_v2 as v2

KEY_LINE = re.compile(r"Scan|Index|Bitmap|Sort|Limit|Execution Time|Planning Time")


@dataclass(frozen=True)
class Plan:
    name: str
    sql: str
    lines: list[str]
    seq_scans: list[str]
    execution_ms: float | None

    def key_lines(self) -> list[str]:
        return [line.rstrip() for line in self.lines if KEY_LINE.search(line)]

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def statements(posts: int, authors: int, stride: int) -> list[tuple[str, str, tuple[object, ...]]]:
    """(name, sql, parameters): a post in the middle of the table and its author."""
    post = posts // 2
    author = 1 + (post * stride) % authors
    other = 1 + ((post + 1) * stride) % authors  # an author that is not ``post``'s
    request = uuid.uuid4()
    return [
        ("GET_POST (GetByIdPost)", v1.GET_POST, (post,)),
        ("LIST_NEWEST (GetGroupPost first page)", v1.LIST_NEWEST, (20,)),
        ("LIST_OLDER_THAN (GetGroupPost deep page)", v1.LIST_OLDER_THAN, (20, 1000)),
        ("LIST_BY_AUTHOR (GetByIdUserPost)", v1.LIST_BY_AUTHOR, (author, 100)),
        ("ADD_POST (CreatePost)", v1.ADD_POST, (author, "Title", "Body text")),
        ("RECORD_EVENT (every write)", v1.RECORD_EVENT,
         (uuid.uuid4(), "post.created", post, "{}", "{}")),
        ("UPDATE_IF_AUTHOR (PutPost)", v1.UPDATE_IF_AUTHOR, (author, post, "Title", "Body")),
        ("DELETE_IF_AUTHOR (DeletePost)", v1.DELETE_IF_AUTHOR, (post, author)),
        ("DELETE_POST (admin delete)", v1.DELETE_POST, (post,)),
        ("DELETE_POSTS_OF_AUTHOR (user deleted)", v1.DELETE_POSTS_OF_AUTHOR, (author, 100)),
        ("IS_DELETED_USER", v1.IS_DELETED_USER, (author,)),
        ("RECORD_DELETED_USER", v1.RECORD_DELETED_USER, (author,)),
        ("AUTHOR_OF", v1.AUTHOR_OF, (post,)),
        ("GET_VERSIONED (v2 GetPost)", v2.GET_VERSIONED, (post,)),
        ("GET_MANY (v2 BatchGetPosts)", v2.GET_MANY, ([post, post + 1, post + 2],)),
        ("POST_EXISTS (v2)", v2.POST_EXISTS, (post,)),
        ("STATE_OF (v2)", v2.STATE_OF, (post,)),
        ("REVISIONS (v2)", v2.REVISIONS, (post, 20)),
        ("REVISIONS_BEFORE (v2)", v2.REVISIONS_BEFORE, (post, 20, 5)),
        ("UPDATE_POST (v2 UpdatePost)", v2.UPDATE_POST, (post, author, "Title", None, None)),
        ("DELETE_POST_IF (v2 DeletePost)", v2.DELETE_POST_IF, (post, author, None)),
        ("CLAIM_REQUEST (v2 CreatePost)", v2.CLAIM_REQUEST, (request, b"f")),
        ("EARLIER_REQUEST (v2 CreatePost)", v2.EARLIER_REQUEST, (request,)),
        ("ATTACH_REQUEST (v2 CreatePost)", v2.ATTACH_REQUEST, (request, post)),
        ("SIGNING_KEY (v2 page tokens)", v2.SIGNING_KEY, ("page-token",)),
        ("ListPosts, first page", v2.list_sql(False, False, False, False), (20,)),
        ("ListPosts, next page", v2.list_sql(False, False, False, True), (20, post)),
        ("ListPosts, by author", v2.list_sql(True, False, False, False), (20, other)),
        ("ListPosts, by author, next page", v2.list_sql(True, False, False, True),
         (20, other, post)),
        ("SearchPosts", v2.search_sql(False, False), ("topic 17", 20)),
        ("SearchPosts, by author", v2.search_sql(True, False), ("topic 17", 20, author)),
    ]  # fmt: skip


async def _explain_all(
    dsn: str, posts: int, authors: int, stride: int, generic: bool
) -> list[Plan]:
    conn = await asyncpg.connect(dsn, statement_cache_size=0)
    try:
        return [
            await _explain(conn, *entry, generic=generic)
            for entry in statements(posts, authors, stride)
        ]
    finally:
        await conn.close()


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return f"'\\x{value.hex()}'"
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(_literal(item) for item in value) + "]"
    return "'" + str(value).replace("'", "''") + "'"


async def _explain(
    conn: asyncpg.Connection,
    name: str,
    sql: str,
    args: tuple[object, ...],
    *,
    generic: bool,
) -> Plan:
    """The plan for these values, or (``generic``) the generic plan a prepared statement
    may switch to after five executions when it costs no more: what the service's asyncpg
    statement cache runs from then on."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        if generic:
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            await conn.execute(f"PREPARE explained AS {sql}")
            values = ", ".join(_literal(arg) for arg in args)
            rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE explained({values})")
        else:
            rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
    except asyncpg.PostgresError as error:
        return Plan(name, sql, [f"error: {error}"], [], None)
    finally:
        await transaction.rollback()
        if generic:
            with contextlib.suppress(asyncpg.PostgresError):  # PREPARE outlives the rollback
                await conn.execute("DEALLOCATE explained")
    lines = [row[0] for row in rows]
    seq = sorted({m.group(1) for line in lines if (m := re.search(r"Seq Scan on (\w+)", line))})
    ms = next(
        (
            float(m.group(1))
            for line in lines
            if (m := re.search(r"Execution Time: ([\d.]+)", line))
        ),
        None,
    )
    return Plan(name, sql, lines, seq, ms)


def explain_all(
    dsn: str, posts: int, authors: int, stride: int, generic: bool = False
) -> list[Plan]:
    return asyncio.run(_explain_all(dsn, posts, authors, stride, generic))
