"""Non-authors racing an author's delete or edit, many threads at once.

Holds when: non-authors only ever get PERMISSION_DENIED or NOT_FOUND, the author's own
request succeeds, and the database shows no change by anyone but the author: the row (when
it survives) holds the author's content and version, and the post's outbox events are
exactly created + the author's change, each naming the author.
"""

from __future__ import annotations

import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from devenv.postgres import LocalPostgres
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from tests.reliability import support
from tests.reliability.support import Outcome, timed_call

pytestmark = pytest.mark.e2e

AUTHOR = 31
INTRUDERS = tuple(range(32, 40))
POSTS = 24
ATTEMPTS_PER_INTRUDER = 3
DENIED = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND}


def test_non_authors_never_change_a_post_even_racing_the_authors_delete_or_edit(
    posts: PostStub, postgres: LocalPostgres
) -> None:
    created = [
        posts.CreatePost(
            pb.PostCreateRequest(auth_id=AUTHOR, title=f"owned {n}", body="original"), timeout=5
        ).post_id
        for n in range(POSTS)
    ]
    deleted = set(created[::2])  # the author deletes half, and edits the other half
    rng = random.Random(7)
    intruder_outcomes: list[Outcome] = []
    author_outcomes: dict[int, Outcome] = {}
    lock = threading.Lock()

    def race(post_id: int) -> None:
        barrier = threading.Barrier(1 + len(INTRUDERS))
        jobs: list[tuple[bool, str, Any]] = []
        if post_id in deleted:
            jobs.append((True, "DeletePost", pb.PostDeleteRequest(auth_id=AUTHOR, post_id=post_id)))
        else:
            edit = pb.PostPutRequest(auth_id=AUTHOR, post_id=post_id, title="author", body="ok")
            jobs.append((True, "PutPost", edit))

        def intrude(intruder: int) -> None:
            barrier.wait(10)
            for attempt in range(ATTEMPTS_PER_INTRUDER):
                request: Any
                if (intruder + attempt) % 2:
                    rpc, request = (
                        "DeletePost",
                        pb.PostDeleteRequest(auth_id=intruder, post_id=post_id),
                    )
                else:
                    rpc, request = (
                        "PutPost",
                        pb.PostPutRequest(
                            auth_id=intruder,
                            post_id=post_id,
                            title="hijacked",
                            body=f"by {intruder}",
                        ),
                    )
                outcome = timed_call(rpc, getattr(posts, rpc), request, 10)
                with lock:
                    intruder_outcomes.append(outcome)

        def author() -> None:
            _, rpc, request = jobs[0]
            barrier.wait(10)
            outcome = timed_call(rpc, getattr(posts, rpc), request, 10)
            with lock:
                author_outcomes[post_id] = outcome

        intruders = list(INTRUDERS)
        rng.shuffle(intruders)
        threads = [threading.Thread(target=intrude, args=(i,)) for i in intruders]
        threads.insert(rng.randrange(len(threads) + 1), threading.Thread(target=author))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

    with ThreadPoolExecutor(max_workers=4) as pool:  # four posts raced at a time
        list(pool.map(race, created))

    intruder_codes = support.code_counts(intruder_outcomes)
    support.record_figure(
        "ownership_race",
        {
            "posts": POSTS,
            "intruder_requests": len(intruder_outcomes),
            "intruder_codes": intruder_codes,
            "author_codes": support.code_counts(author_outcomes.values()),
        },
    )
    assert {o.code for o in intruder_outcomes} <= DENIED, intruder_codes
    assert all(o.ok for o in author_outcomes.values()), support.code_counts(
        author_outcomes.values()
    )
    assert len(author_outcomes) == POSTS

    ids = ",".join(map(str, created))
    rows = postgres.psql(f"SELECT id, version, title, body FROM posts WHERE id IN ({ids})")
    surviving = {int(line.split("|")[0]): line.split("|")[1:] for line in rows.splitlines()}
    assert set(surviving) == set(created) - deleted
    assert all(row == ["2", "author", "ok"] for row in surviving.values()), surviving

    events = postgres.psql(
        f"SELECT post_id, event_type, payload FROM outbox WHERE post_id IN ({ids}) ORDER BY id"
    )
    by_post: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    for line in events.splitlines():
        post_id, event_type, payload = line.split("|", 2)
        by_post.setdefault(int(post_id), []).append((event_type, json.loads(payload)))
    for post_id in created:
        kinds = [kind for kind, _ in by_post[post_id]]
        change = "post.deleted" if post_id in deleted else "post.updated"
        assert kinds == ["post.created", change], (post_id, kinds)
        assert all(p["post"]["author_id"] == AUTHOR for _, p in by_post[post_id])
        if post_id in deleted:
            assert by_post[post_id][1][1]["reason"] == "author"
