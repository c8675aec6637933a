"""Traces follow a request from the gateway through User-service, PostgreSQL and Kafka.

The service runs in this test process (built by the real bootstrap) so its spans land
in an in-memory exporter; clients, the User-service stand-in and Kafka are real.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator

import grpc
import pytest
import pytest_asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from devenv.kafka import LocalKafka
from devenv.user_service import StandInUserService
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from post_service.bootstrap import App, build_app
from post_service.config import (
    DatabaseSettings,
    GrpcSettings,
    KafkaSettings,
    MetricsSettings,
    OutboxSettings,
    Settings,
    UserServiceSettings,
)
from post_service.logs import JsonFormatter
from tests.support.kafka_client import Topics, produce, read_topic, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

GATEWAY_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
GATEWAY_SPAN_ID = "00f067aa0ba902b7"
PRODUCER_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PRODUCER_SPAN_ID = "b7ad6b7169203331"


def traceparent(trace_id: str, span_id: str) -> str:
    return f"00-{trace_id}-{span_id}-01"


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)  # the consumer's spans use the global provider
    return memory


@pytest.fixture(scope="module")
def log_lines() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(previous)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def app(
    migrated_database: Callable[[str], str],
    kafka: LocalKafka,
    user_service: StandInUserService,
    exporter: InMemorySpanExporter,
    log_lines: io.StringIO,
) -> AsyncIterator[tuple[App, Topics]]:
    url = migrated_database("tracing")
    topics = await Topics().create(kafka.bootstrap_servers)
    settings = Settings(
        db=DatabaseSettings(url=url),
        grpc=GrpcSettings(host="127.0.0.1", port=0),
        user_service=UserServiceSettings(addr=user_service.addr, cache_ttl_seconds=0),
        metrics=MetricsSettings(host="127.0.0.1", port=0),
        kafka=KafkaSettings(
            bootstrap_servers=kafka.bootstrap_servers,
            post_events_topic=topics.events,
            user_deleted_topic=topics.user_deleted,
            admin_delete_post_topic=topics.admin_delete,
            dead_letter_topic=topics.dead_letters,
            consumer_group="tracing-test",
        ),
        outbox=OutboxSettings(poll_interval_seconds=0.1),
    )
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    service = build_app(settings, tracer_provider=provider)
    await service.start()
    yield service, topics
    await service.stop()


def spans_of_trace(exporter: InMemorySpanExporter, trace_id: str) -> list[ReadableSpan]:
    return [
        span
        for span in exporter.get_finished_spans()
        if span.context is not None and format(span.context.trace_id, "032x") == trace_id
    ]


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


async def test_a_request_trace_continues_into_user_service_the_database_and_kafka(
    app: tuple[App, Topics],
    exporter: InMemorySpanExporter,
    user_service: StandInUserService,
    kafka: LocalKafka,
) -> None:
    service, topics = app
    incoming = (("traceparent", traceparent(GATEWAY_TRACE_ID, GATEWAY_SPAN_ID)),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
        created = await PostStub(channel).CreatePost(
            pb.PostCreateRequest(auth_id=7, title="Traced title", body="do not leak me"),
            metadata=incoming,
            timeout=5,
        )

    spans = spans_of_trace(exporter, GATEWAY_TRACE_ID)
    (server,) = [s for s in spans if s.kind == SpanKind.SERVER]
    assert server.name == "/post.Post/CreatePost"
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == GATEWAY_SPAN_ID

    sent = [m.get("traceparent", "") for m in user_service.calls.metadata]
    assert any(GATEWAY_TRACE_ID in value for value in sent), sent
    (client,) = [s for s in spans if s.kind == SpanKind.CLIENT and "UserPost" in s.name]

    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    database = [
        s for s in spans if s.instrumentation_scope and "asyncpg" in s.instrumentation_scope.name
    ]
    assert database, [s.name for s in spans]
    for span in [*database, client]:
        assert server in ancestors(span, by_id)
        attributes = json.dumps(dict(span.attributes or {}))
        assert "do not leak me" not in attributes
        assert "Traced title" not in attributes

    async def event_header() -> str | None:
        for record in await read_topic(kafka.bootstrap_servers, topics.events):
            if record.json()["post"]["id"] == created.post_id:
                return record.headers["traceparent"].decode()
        return None

    header = await wait_for(event_header)
    assert header.split("-")[1] == GATEWAY_TRACE_ID


async def test_a_consumed_deletion_continues_the_producers_trace_into_its_events(
    app: tuple[App, Topics],
    exporter: InMemorySpanExporter,
    kafka: LocalKafka,
    log_lines: io.StringIO,
) -> None:
    service, topics = app
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
        stub = PostStub(channel)
        ids = {
            (
                await stub.CreatePost(
                    pb.PostCreateRequest(auth_id=77, title="t", body="b"), timeout=5
                )
            ).post_id
            for _ in range(2)
        }
    header = [("traceparent", traceparent(PRODUCER_TRACE_ID, PRODUCER_SPAN_ID).encode())]
    await produce(kafka.bootstrap_servers, topics.user_deleted, b'{"id": 77}', headers=header)

    async def deletion_headers() -> list[str] | None:
        found = [
            record.headers["traceparent"].decode()
            for record in await read_topic(kafka.bootstrap_servers, topics.events)
            if record.json()["event_type"] == "post.deleted" and record.json()["post"]["id"] in ids
        ]
        return found if len(found) == 2 else None

    for value in await wait_for(deletion_headers):
        assert value.split("-")[1] == PRODUCER_TRACE_ID

    (consumer,) = [
        s for s in spans_of_trace(exporter, PRODUCER_TRACE_ID) if s.kind == SpanKind.CONSUMER
    ]
    assert consumer.name == f"{topics.user_deleted} process"
    assert consumer.parent is not None
    assert format(consumer.parent.span_id, "016x") == PRODUCER_SPAN_ID
    attributes = dict(consumer.attributes or {})
    assert attributes["messaging.system"] == "kafka"
    assert attributes["messaging.destination.name"] == topics.user_deleted
    assert "messaging.destination.partition.id" in attributes
    assert "messaging.kafka.offset" in attributes

    applied = [
        json.loads(line) for line in log_lines.getvalue().splitlines() if "deletion applied" in line
    ]
    assert applied
    assert applied[-1]["trace_id"] == PRODUCER_TRACE_ID


async def test_log_lines_inside_an_rpc_carry_its_trace_id(
    app: tuple[App, Topics], user_service: StandInUserService, log_lines: io.StringIO
) -> None:
    service, _ = app
    user_service.stop()  # makes the RPC log a warning about degraded usernames
    incoming = (("traceparent", traceparent("11112222333344445555666677778888", GATEWAY_SPAN_ID)),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
        await PostStub(channel).GetGroupPost(
            pb.PostGetGroupRequest(limit=1), metadata=incoming, timeout=5
        )
    user_service.start()
    degraded = [
        json.loads(line)
        for line in log_lines.getvalue().splitlines()
        if "user-service unavailable" in line
    ]
    assert degraded
    assert degraded[-1]["trace_id"] == "11112222333344445555666677778888"
    assert len(degraded[-1]["span_id"]) == 16
