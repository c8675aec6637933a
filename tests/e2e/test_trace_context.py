"""W3C trace context flows with no exporter configured (the chart's default)."""

from __future__ import annotations

import json

from devenv.post_service_process import PostServiceProcess
from devenv.postgres import LocalPostgres
from devenv.user_service import StandInUserService
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub

GATEWAY_TRACE_ID = "5cf92f3577b34da6a3ce929d0e0e4799"
GATEWAY_TRACEPARENT = f"00-{GATEWAY_TRACE_ID}-00f067aa0ba902b7-01"


def test_without_an_exporter_the_callers_trace_reaches_user_service_and_the_event(
    service: PostServiceProcess,
    posts: PostStub,
    user_service: StandInUserService,
    postgres: LocalPostgres,
    db_url: str,
) -> None:
    assert not any(key.startswith("OTEL_") for key in service.env), "no exporter configured"
    created = posts.CreatePost(
        pb.PostCreateRequest(auth_id=5, title="traced", body="b"),
        metadata=[("traceparent", GATEWAY_TRACEPARENT)],
        timeout=5,
    )

    sent = [m.get("traceparent", "") for m in user_service.calls.metadata]
    assert any(value.split("-")[1] == GATEWAY_TRACE_ID for value in sent if value), sent
    stored = postgres.psql(
        f"SELECT trace_context FROM outbox WHERE post_id = {created.post_id}",
        database=db_url.rsplit("/", 1)[1],
    )
    # The relay sends this context as the event's Kafka headers (tests/e2e/test_tracing.py).
    assert json.loads(stored)["traceparent"].split("-")[1] == GATEWAY_TRACE_ID
