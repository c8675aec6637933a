"""Requests over GRPC_MAX_RECEIVE_MESSAGE_BYTES are refused before any work is done.

Holds when: one byte over the configured limit is RESOURCE_EXHAUSTED, exactly at the limit is
read and judged by the service's own rules, and a refused request leaves no trace: no post
row, no outbox row, no version change, no User-service call.
"""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from devenv.lifecycle import free_port
from devenv.post_service_process import PostServiceProcess
from devenv.postgres import LocalPostgres
from devenv.user_service import StandInUserService
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from tests.reliability import support
from tests.reliability.support import timed_call
from tests.support.service_env import env_with_user_service

pytestmark = pytest.mark.e2e

DEFAULT_LIMIT = 1024 * 1024  # GRPC_MAX_RECEIVE_MESSAGE_BYTES of the session service
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def _sized_create(marker: str, size: int) -> pb.PostCreateRequest:
    """A CreatePost whose serialised form is exactly ``size`` bytes."""
    request = pb.PostCreateRequest(auth_id=1, title=marker, body="")
    body_length = size - request.ByteSize() - 1  # tag byte; the length varint is added below
    while True:
        request.body = "x" * body_length
        if request.ByteSize() <= size:
            break
        body_length -= 1
    assert request.ByteSize() == size, (request.ByteSize(), size)
    return request


def _rows(postgres: LocalPostgres, sql: str) -> int:
    return int(postgres.psql(sql))


def test_over_the_limit_is_refused_before_any_work_and_at_the_limit_is_judged_by_rules(
    posts: PostStub, postgres: LocalPostgres, user_service: StandInUserService
) -> None:
    marker = f"size-{time.time_ns()}"
    outbox_before = _rows(postgres, "SELECT count(*) FROM outbox")
    user_service.calls.by_ids.clear()

    over = timed_call("CreatePost", posts.CreatePost, _sized_create(marker, DEFAULT_LIMIT + 1), 10)
    at_limit = timed_call("CreatePost", posts.CreatePost, _sized_create(marker, DEFAULT_LIMIT), 10)
    assert over.code == RESOURCE_EXHAUSTED, over
    # Read and judged: the body is far over POSTS_MAX_BODY_CHARS, a rule, not a transport limit.
    assert at_limit.code == grpc.StatusCode.INVALID_ARGUMENT, at_limit
    assert at_limit.details.startswith("body:")

    own = posts.CreatePost(pb.PostCreateRequest(auth_id=2, title="mine", body="v1"), timeout=5)
    outbox_before_put = _rows(postgres, "SELECT count(*) FROM outbox")
    put = pb.PostPutRequest(auth_id=2, post_id=own.post_id, title="big", body="y" * DEFAULT_LIMIT)
    put_over = timed_call("PutPost", posts.PutPost, put, 10)
    assert put_over.code == RESOURCE_EXHAUSTED, put_over

    title_rows = f"SELECT count(*) FROM posts WHERE title = '{marker}'"
    assert _rows(postgres, title_rows) == 0
    assert _rows(postgres, "SELECT count(*) FROM outbox") == outbox_before_put == outbox_before + 1
    row = postgres.psql(f"SELECT version, title, body FROM posts WHERE id = {own.post_id}")
    assert row == "1|mine|v1"
    assert user_service.calls.by_ids == [[2]]  # only the legitimate create asked for a name
    support.record_figure(
        "message_size_default_limit",
        {
            "limit_bytes": DEFAULT_LIMIT,
            "limit_plus_1": over.code.name,
            "at_limit": at_limit.code.name,
            "put_over_limit": put_over.code.name,
            "refused_in_s": round(over.elapsed, 3),
        },
    )


def test_a_lowered_limit_is_the_one_enforced(
    db_url: str, postgres: LocalPostgres, user_service: StandInUserService, tmp_path: Path
) -> None:
    limit = 4096
    env = env_with_user_service(
        db_url,
        user_service.addr,
        GRPC_MAX_RECEIVE_MESSAGE_BYTES=str(limit),
        METRICS_PORT=str(free_port()),
    )
    process = PostServiceProcess(env, tmp_path / "serve.log").start()
    marker = f"small-limit-{time.time_ns()}"
    try:
        with grpc.insecure_channel(process.addr) as channel:
            stub = PostStub(channel)
            # 5000 characters is within POSTS_MAX_BODY_CHARS, but over this instance's limit.
            refused = timed_call("CreatePost", stub.CreatePost, _sized_create(marker, limit + 1), 5)
            accepted = timed_call("CreatePost", stub.CreatePost, _sized_create(marker, limit), 5)
    finally:
        process.stop()
    assert refused.code == RESOURCE_EXHAUSTED, refused
    assert accepted.ok, accepted
    stored = postgres.psql(f"SELECT count(*) FROM posts WHERE title = '{marker}'")
    assert stored == "1"  # only the accepted one
    support.record_figure(
        "message_size_lowered_limit",
        {"limit_bytes": limit, "limit_plus_1": refused.code.name, "at_limit": "OK"},
    )
