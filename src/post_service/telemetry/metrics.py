"""Every Prometheus metric the service exposes, in one registry built at start-up.

The gRPC names and labels follow the widely used gRPC Prometheus convention
(grpc_server_started_total, ..., labels grpc_type/grpc_service/grpc_method/grpc_code)
so existing dashboards work. No label ever carries a post or user id.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    platform_collector,
    process_collector,
)

from post_service import service_version

# 1 ms to 5 s, roughly doubling: resolves both a cached read and a stalled dependency.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_RPC = ("grpc_type", "grpc_service", "grpc_method")


@dataclass(frozen=True)
class RpcMetrics:
    """One side's (server or client) three gRPC series, named by the convention."""

    started: Counter
    handled: Counter
    handling: Histogram

    @classmethod
    def register(cls, side: str, rpcs: str, registry: CollectorRegistry) -> RpcMetrics:
        by_code = (*_RPC, "grpc_code")
        return cls(
            started=Counter(
                f"grpc_{side}_started_total", f"{rpcs} started.", _RPC, registry=registry
            ),
            handled=Counter(
                f"grpc_{side}_handled_total",
                f"{rpcs} completed, by status code.",
                by_code,
                registry=registry,
            ),
            handling=Histogram(
                f"grpc_{side}_handling_seconds",
                f"Time to complete {rpcs}, by status code.",
                by_code,
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
        )


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        process_collector.ProcessCollector(registry=r)
        platform_collector.PlatformCollector(registry=r)
        gc_collector.GCCollector(registry=r)

        self.server = RpcMetrics.register("server", "RPCs to this server", r)
        self.client = RpcMetrics.register("client", "RPCs to User-service", r)
        self.degraded_responses = Counter(
            "post_service_degraded_responses_total",
            "Responses served with empty usernames because User-service did not answer.",
            ("grpc_service", "grpc_method"),
            registry=r,
        )
        self.db_pool_connections = Gauge(
            "post_service_db_pool_connections",
            "Database connections by pool (primary; replica with DB_READ_URL) and state.",
            ("pool", "state"),
            registry=r,
        )
        self.db_pool_size = Gauge(
            "post_service_db_pool_size",
            "The most database connections each pool opens (DB_POOL_SIZE).",
            ("pool",),
            registry=r,
        )
        self.read_replica_fallbacks = Counter(
            "post_service_read_replica_fallbacks",
            "Reads meant for the read replica (DB_READ_URL) that the primary served, by reason: "
            "unavailable, lagging (a post by id the replica has not replayed yet), "
            "recovery_conflict.",
            ("reason",),
            registry=r,
        )
        self.outbox_pending = Gauge(
            "post_service_outbox_pending_rows", "Outbox events not yet published.", registry=r
        )
        self.outbox_oldest_age = Gauge(
            "post_service_outbox_oldest_pending_age_seconds",
            "Age of the oldest unpublished outbox event (0 when none).",
            registry=r,
        )
        self.outbox_published = Counter(
            "post_service_outbox_published", "Outbox events published to Kafka.", registry=r
        )
        self.outbox_publish_failures = Counter(
            "post_service_outbox_publish_failures",
            "Relay rounds that failed to publish (events stay pending and are retried).",
            registry=r,
        )
        self.consumer_processed = Counter(
            "post_service_consumer_processed", "Consumed messages applied.", ("topic",), registry=r
        )
        self.consumer_failed = Counter(
            "post_service_consumer_failed",
            "Attempts to apply a consumed message that failed and will be retried.",
            ("topic",),
            registry=r,
        )
        self.consumer_dead_lettered = Counter(
            "post_service_consumer_dead_lettered",
            "Malformed consumed messages sent to the dead-letter topic.",
            ("topic",),
            registry=r,
        )
        self.consumer_lag = Gauge(
            "post_service_consumer_lag",
            "Messages behind the partition's end.",
            ("topic", "partition"),
            registry=r,
        )
        self.worker_restarts = Counter(
            "post_service_worker_restarts",
            "Background workers restarted after an unexpected error.",
            ("worker",),
            registry=r,
        )
        build_info = Gauge(
            "post_service_build_info",
            "Always 1; labels carry the running version.",
            ("version", "python_version"),
            registry=r,
        )
        build_info.labels(service_version(), platform.python_version()).set(1)

    def known_topics(self, topics: tuple[str, ...]) -> None:
        """Create the per-topic series at zero, so rate() and increase() see the first event."""
        for topic in topics:
            for counter in (
                self.consumer_processed,
                self.consumer_failed,
                self.consumer_dead_lettered,
            ):
                counter.labels(topic)
