"""post.v2 calls are traced like v1's: a server span continuing the caller's traceparent,
with the SQL statements beneath it. The service runs in this process (the real bootstrap)
so that its spans land in an in-memory exporter."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from devenv.user_service import StandInUserService
from post_service._generated.post.v2 import post_pb2 as pb
from post_service._generated.post.v2.post_pb2_grpc import PostServiceStub
from post_service.bootstrap import build_app
from post_service.config import (
    DatabaseSettings,
    GrpcSettings,
    MetricsSettings,
    Settings,
    UserServiceSettings,
)

pytestmark = pytest.mark.e2e

TRACE_ID = "5bf92f3577b34da6a3ce929d0e0e4737"
PARENT_SPAN_ID = "10f067aa0ba902b7"


async def test_a_v2_call_is_a_server_span_of_the_callers_trace_with_its_sql_below(
    migrated_database: Callable[[str], str], user_service: StandInUserService
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings(
        db=DatabaseSettings(url=migrated_database("v2_tracing")),
        grpc=GrpcSettings(host="127.0.0.1", port=0),
        user_service=UserServiceSettings(addr=user_service.addr, cache_ttl_seconds=0),
        metrics=MetricsSettings(host="127.0.0.1", port=0),
    )
    app = build_app(settings, tracer_provider=provider)
    await app.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            await PostServiceStub(channel).ListPosts(
                pb.ListPostsRequest(page_size=5),
                metadata=(("traceparent", f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"),),
                timeout=10,
            )
    finally:
        await app.stop()

    spans = [
        s
        for s in exporter.get_finished_spans()
        if s.context is not None and format(s.context.trace_id, "032x") == TRACE_ID
    ]
    (server,) = [s for s in spans if s.kind == SpanKind.SERVER]
    assert server.name == "/post.v2.PostService/ListPosts"
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == PARENT_SPAN_ID
    assert server.context is not None
    statements = [
        s for s in spans if s.instrumentation_scope and "asyncpg" in s.instrumentation_scope.name
    ]
    assert statements
    assert all(s.parent is not None for s in statements)
