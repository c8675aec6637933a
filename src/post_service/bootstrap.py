"""Builds the running service from Settings, and starts and stops it in a clear order."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import asyncpg
import grpc
from grpc_health.v1 import health
from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.grpc import (
    aio_client_interceptors,
    aio_server_interceptor,
    filters,
)
from opentelemetry.sdk.trace import TracerProvider

from post_service import service_version
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.v2 import post_pb2 as pb_v2
from post_service.adapters.kafka.producer import KafkaPublisher
from post_service.adapters.postgres.outbox import PostgresOutbox
from post_service.adapters.postgres.pool import Database, create_database
from post_service.adapters.postgres.readiness import PostgresReadiness
from post_service.adapters.postgres.replica import FALLBACK_REASONS, ReadReplica
from post_service.adapters.postgres.replica_stores import ReplicaPostStore, ReplicaPostStoreV2
from post_service.adapters.postgres.store import PostgresPostStore
from post_service.adapters.postgres.store_v2 import PostgresPostStoreV2
from post_service.adapters.user_service import GrpcUserDirectory, open_channel
from post_service.config import Settings
from post_service.domain.paging import PageLimits
from post_service.entrypoints.grpc.errors import DomainErrorInterceptor
from post_service.entrypoints.grpc.health import DatabaseHealthMonitor
from post_service.entrypoints.grpc.metrics import ServerMetricsInterceptor
from post_service.entrypoints.grpc.server import create_server
from post_service.entrypoints.grpc.servicer import PostServicer
from post_service.entrypoints.grpc.v2_servicer import PostServiceV2Servicer
from post_service.entrypoints.kafka.deletions import DeletionConsumer
from post_service.entrypoints.kafka.relay import OutboxRelay, StartablePublisher
from post_service.entrypoints.supervisor import Supervisor, Worker
from post_service.messaging import Outbox
from post_service.service.moderation import ModerationService
from post_service.service.ports import PostStore, UserDirectory
from post_service.service.ports_v2 import PostStoreV2
from post_service.service.posts import PostRules, PostService
from post_service.service.posts_v2 import PostServiceV2
from post_service.service.usernames import UsernameResolver
from post_service.telemetry.collectors import watch_outbox, watch_pool
from post_service.telemetry.grpc_metrics import ClientMetricsInterceptor
from post_service.telemetry.http import MetricsServer
from post_service.telemetry.metrics import Metrics
from post_service.telemetry.tracing import current_trace_context, tracer_provider_from_environment

log = logging.getLogger(__name__)

OUTBOX_GAUGE_INTERVAL_SECONDS = 5.0
POOL_CLOSE_TIMEOUT_SECONDS = 5.0


async def _nothing() -> None:
    pass


@dataclass
class Adapters:
    """What the service talks to. ``build_app`` makes the real ones; tests may pass fakes."""

    store: PostStore
    store_v2: PostStoreV2
    outbox: Outbox
    users: UserDirectory
    # One line saying why the database cannot serve this build, or None when it can.
    readiness: Callable[[float], Awaitable[str | None]]
    publisher: StartablePublisher | None = None
    open: Callable[[], Awaitable[None]] = _nothing
    close: Callable[[], Awaitable[None]] = _nothing


@dataclass
class App:
    settings: Settings
    adapters: Adapters
    server: grpc.aio.Server
    grpc_port: int
    health: health.aio.HealthServicer
    health_monitor: DatabaseHealthMonitor
    metrics_server: MetricsServer
    workers: Mapping[str, Worker]
    supervisor: Supervisor

    async def start(self) -> None:
        await self.adapters.open()
        await self.metrics_server.start()
        await self.server.start()
        await self.health_monitor.start()
        self.supervisor.start(self.workers)
        # What start-up built (modules, descriptors, settings) lives as long as the process:
        # frozen out of the collector, a full collection scans only what serving allocates.
        # One pass over the start-up heap took 52 ms here, a stall for every request in flight.
        gc.collect()
        gc.freeze()
        log.info(
            "post-service serving gRPC",
            extra={
                "grpc_port": self.grpc_port,
                "metrics_port": self.metrics_server.port,
                "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
            },
        )

    async def stop(self) -> None:
        """Drain: health NOT_SERVING, refuse new RPCs, finish in-flight ones, then close.

        Also after a start() that failed half-way: whatever did not start is skipped.
        """
        grace = self.settings.runtime.shutdown_grace_seconds
        log.info("shutting down", extra={"grace_seconds": grace})
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        # Workers stop between messages/batches: an unfinished one is neither committed nor
        # marked sent, so it is simply redone by the next owner.
        await self.supervisor.stop()
        await self.adapters.close()
        await self.metrics_server.stop()
        log.info("stopped")


def build_app(
    settings: Settings,
    tracer_provider: TracerProvider | None = None,
    adapters: Adapters | None = None,
) -> App:
    """Wires every part. ``tracer_provider`` overrides the OTEL_* environment and
    ``adapters`` the real PostgreSQL, User-service and Kafka ones (tests)."""
    tracer_provider = tracer_provider or tracer_provider_from_environment(service_version())
    # W3C trace context is part of the platform contract: the caller's traceparent goes on
    # into User-service calls and the outbox whether or not spans are exported. Without an
    # exporter the no-op provider carries the caller's context and records nothing.
    propagating = tracer_provider or trace.NoOpTracerProvider()
    metrics = Metrics()
    # A series from the start, at zero: an alert on increase() cannot see a first sample.
    for service in (
        pb.DESCRIPTOR.services_by_name["Post"],
        pb_v2.DESCRIPTOR.services_by_name["PostService"],
    ):
        for method in service.methods_by_name:
            metrics.degraded_responses.labels(service.full_name, method)
    for reason in FALLBACK_REASONS:
        metrics.read_replica_fallbacks.labels(reason)
    adapters = adapters or real_adapters(settings, metrics, tracer_provider, propagating)
    usernames = UsernameResolver(
        adapters.users,
        cache_ttl_seconds=settings.user_service.cache_ttl_seconds,
        cache_size=settings.user_service.cache_size,
    )
    rules = PostRules(
        page_limits=PageLimits(settings.posts.default_page_size, settings.posts.max_page_size),
        max_body_chars=settings.posts.max_body_chars,
    )
    posts = PostService(adapters.store, usernames, rules)
    posts_v2 = PostServiceV2(adapters.store_v2, usernames, rules)
    moderation = ModerationService(adapters.store, settings.kafka.user_deletion_batch_size)
    health_servicer = health.aio.HealthServicer()
    not_health = filters.negate(filters.service_name("grpc.health.v1.Health"))
    interceptors: list[grpc.aio.ServerInterceptor] = [
        aio_server_interceptor(propagating, filter_=not_health),
        ServerMetricsInterceptor(metrics),
        DomainErrorInterceptor(),
    ]
    server, port = create_server(
        settings.grpc,
        PostServicer(posts),
        health_servicer,
        interceptors,
        PostServiceV2Servicer(posts_v2),
    )
    monitor = DatabaseHealthMonitor(
        health_servicer, adapters.readiness, settings.runtime.health_check_interval_seconds
    )
    workers: dict[str, Worker] = {
        "db-health": monitor.run,
        "outbox-gauges": functools.partial(
            watch_outbox, adapters.outbox, metrics, OUTBOX_GAUGE_INTERVAL_SECONDS
        ),
    }
    if adapters.publisher is not None:
        workers["outbox-relay"] = OutboxRelay(
            adapters.outbox,
            adapters.publisher,
            settings.kafka.post_events_topic,
            settings.outbox,
            metrics,
            settings.kafka.retry_backoff_max_seconds,
            publish_timeout_seconds=settings.kafka.request_timeout_seconds,
        ).run
        workers["deletion-consumer"] = DeletionConsumer(
            settings.kafka, moderation, adapters.publisher, metrics
        ).run
    else:
        log.warning(
            "KAFKA_BOOTSTRAP_SERVERS not set: outbox relay and consumers are off; "
            "post events accumulate in the outbox until Kafka is configured"
        )
    return App(
        settings=settings,
        adapters=adapters,
        server=server,
        grpc_port=port,
        health=health_servicer,
        health_monitor=monitor,
        metrics_server=MetricsServer(
            metrics.registry, settings.metrics.host, settings.metrics.port
        ),
        workers=workers,
        supervisor=Supervisor(metrics),
    )


def real_adapters(
    settings: Settings,
    metrics: Metrics,
    tracer_provider: TracerProvider | None,
    propagating: trace.TracerProvider,
) -> Adapters:
    """PostgreSQL (the primary's pool, and the read replica's when configured), User-service
    (one channel) and, when configured, Kafka."""
    db = create_database(settings.db)
    watch_pool(db.pool, "primary", metrics)
    store, store_v2, replica_db = _post_stores(settings, db, metrics)
    if tracer_provider is not None:
        # Patches asyncpg's Connection class for the whole process (undone on close);
        # query text is recorded, parameters (post bodies) are not.
        AsyncPGInstrumentor().instrument(tracer_provider=tracer_provider)
    user_channel = open_channel(
        settings.user_service,
        interceptors=[ClientMetricsInterceptor(metrics), *aio_client_interceptors(propagating)],
    )
    publisher = KafkaPublisher(settings.kafka) if settings.kafka.enabled else None

    async def open_pool() -> None:
        await db.pool  # connects nothing yet: connections open when first needed
        if replica_db is not None:
            await replica_db.pool

    async def close_all() -> None:
        if publisher is not None:
            await publisher.stop()
        await user_channel.close()
        await _close_pool(db.pool)
        if replica_db is not None:
            await _close_pool(replica_db.pool)
        if tracer_provider is not None:
            AsyncPGInstrumentor().uninstrument()

    return Adapters(
        store=store,
        store_v2=store_v2,
        outbox=PostgresOutbox(db),
        users=GrpcUserDirectory(user_channel, settings.user_service.timeout_seconds),
        readiness=PostgresReadiness(db).problem,
        publisher=publisher,
        open=open_pool,
        close=close_all,
    )


def _post_stores(
    settings: Settings, db: Database, metrics: Metrics
) -> tuple[PostStore, PostStoreV2, Database | None]:
    """The v1 and v2 stores; with DB_READ_URL, their reads go through the replica's pool.
    Everything else (writes, outbox, consumers, readiness, migrations) stays on ``db``."""
    store = PostgresPostStore(db, trace_context=current_trace_context)
    store_v2 = PostgresPostStoreV2(db, trace_context=current_trace_context)
    if settings.db.read_url is None:
        return store, store_v2, None
    replica_db = create_database(settings.db, settings.db.read_url)
    watch_pool(replica_db.pool, "replica", metrics)
    replica = ReadReplica(
        db,
        replica_db,
        on_fallback=lambda reason: metrics.read_replica_fallbacks.labels(reason).inc(),
    )
    return ReplicaPostStore(store, replica), ReplicaPostStoreV2(store_v2, replica), replica_db


async def _close_pool(pool: asyncpg.Pool) -> None:
    """Closes gracefully; a connection still held after the drain is cut."""
    try:
        await asyncio.wait_for(pool.close(), POOL_CLOSE_TIMEOUT_SECONDS)
    except TimeoutError:
        pool.terminate()
