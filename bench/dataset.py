"""The benchmark's data set: its shape, the SQL that seeds it, and the request payloads.

Seeding runs in PostgreSQL itself (one ``INSERT ... SELECT`` over ``generate_series``), so
100,000 posts take a few seconds. Every author has the same number of posts, spread over the
whole table (author of post ``i`` is ``1 + (i * 7919) % AUTHORS``), as a forum's posts are
interleaved in time. Bodies are 200..599 characters (about 400 on average), titles about 30.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

POSTS = 100_000
AUTHORS = 1_000
BODY_MIN_CHARS = 200
BODY_SPAN_CHARS = 400  # bodies are BODY_MIN_CHARS + (0 .. BODY_SPAN_CHARS - 1) characters
MEAN_BODY_CHARS = BODY_MIN_CHARS + BODY_SPAN_CHARS // 2
AUTHOR_STRIDE = 7919  # a prime: ``i * stride % AUTHORS`` visits every author equally often

# Words for bodies: readable text compresses and encodes like real posts, unlike random bytes.
_WORDS = (
    "the forum post service stores every thread reply with its author title and body "
    "so readers page through the newest posts first while writers edit their own text"
)


@dataclass(frozen=True)
class DataSet:
    posts: int = POSTS
    authors: int = AUTHORS

    @property
    def posts_per_author(self) -> int:
        return self.posts // self.authors

    def seed_sql(self) -> str:
        """Fills an empty ``posts`` table (ids 1..posts) and moves its id sequence past them."""
        body = (
            f"substr(repeat('{_WORDS} ', 8), 1 + (i * 13) % 97, "
            f"{BODY_MIN_CHARS} + (i * 37) % {BODY_SPAN_CHARS})"
        )
        return f"""
            BEGIN;
            TRUNCATE posts, outbox RESTART IDENTITY CASCADE;  -- and post_revisions
            INSERT INTO posts (id, author_id, title, body, created_at, updated_at, version)
            SELECT i,
                   1 + (i::bigint * {AUTHOR_STRIDE}) % {self.authors},
                   'Thread ' || i || ': notes on topic ' || (i % 211),
                   {body},
                   now() - make_interval(secs => ({self.posts} - i) * 300),
                   now() - make_interval(secs => ({self.posts} - i) * 300),
                   1
            FROM generate_series(1, {self.posts}) AS i;
            SELECT setval(pg_get_serial_sequence('posts', 'id'), {self.posts});
            COMMIT;
        """  # noqa: S608 - only integers and constants of this module are interpolated

    def put_requests(self, pairs: list[tuple[int, int]], seed: int = 6) -> list[dict[str, object]]:
        """PutPost messages for (author_id, post_id) pairs: each author edits its own post."""
        rng = random.Random(seed)  # noqa: S311 - benchmark payloads, not security
        return [
            {
                "auth_id": author,
                "post_id": post,
                "title": f"Edited thread {post}",
                "body": body_text(rng.randrange(BODY_SPAN_CHARS)),
            }
            for author, post in pairs
        ]


def body_text(offset: int, length: int = MEAN_BODY_CHARS) -> str:
    text = (_WORDS + " ") * 8
    start = offset % 97
    return text[start : start + length]


def create_template(authors: int = AUTHORS) -> str:
    """ghz call data for CreatePost: a random author, a unique-ish title, a mean-sized body."""
    body = json.dumps(body_text(0))
    return (
        f'{{"auth_id": "{{{{randomInt 1 {authors + 1}}}}}", '
        f'"title": "Benchmark post {{{{randomString 10}}}}", "body": {body}}}'
    )
