"""The metric names the dashboard and the alerting rules may use: the single list to keep in
step with the service's /metrics exposition (docs/conventions-for-helpers.md, "Prometheus
metrics").

``SERVICE_METRICS`` maps each metric family the service exposes to its type; ``sample_names()``
expands the families into the sample names that appear in PromQL and in the exposition text
(``_bucket``/``_sum``/``_count`` for histograms; counters are listed with their ``_total``, as
prometheus_client exposes them). A test of the running service can check
``SERVICE_SAMPLE_NAMES`` against what its /metrics endpoint really serves.
"""

from __future__ import annotations

from typing import Literal

MetricType = Literal["counter", "gauge", "histogram"]

# Exposed by post-service on METRICS_PORT (default 9464), path /metrics.
SERVICE_METRICS: dict[str, MetricType] = {
    # gRPC server (grpc_service="post.Post"); labels grpc_type, grpc_service, grpc_method
    # (+ grpc_code on handled/handling).
    "grpc_server_started_total": "counter",
    "grpc_server_handled_total": "counter",
    "grpc_server_handling_seconds": "histogram",
    # gRPC client calls to the User service (grpc_service="user_post.UserPost").
    "grpc_client_started_total": "counter",
    "grpc_client_handled_total": "counter",
    "grpc_client_handling_seconds": "histogram",
    # Responses served with empty usernames because the User service did not answer.
    "post_service_degraded_responses_total": "counter",
    # asyncpg pool: connections{state="in_use"|"idle"} and the configured size.
    "post_service_db_pool_connections": "gauge",
    "post_service_db_pool_size": "gauge",
    # Reads meant for the read replica (DB_READ_URL) that the primary served
    # {reason="unavailable"|"lagging"|"recovery_conflict"}.
    "post_service_read_replica_fallbacks_total": "counter",
    # Transactional outbox.
    "post_service_outbox_pending_rows": "gauge",
    "post_service_outbox_oldest_pending_age_seconds": "gauge",
    "post_service_outbox_published_total": "counter",
    "post_service_outbox_publish_failures_total": "counter",
    # Kafka consumer ({topic}; lag also {partition}).
    "post_service_consumer_processed_total": "counter",
    "post_service_consumer_failed_total": "counter",
    "post_service_consumer_dead_lettered_total": "counter",
    "post_service_consumer_lag": "gauge",
    # Background workers restarted by the supervisor after an unexpected error {worker}.
    "post_service_worker_restarts_total": "counter",
    # Build information (gauge = 1) {version, python_version}.
    "post_service_build_info": "gauge",
    # prometheus_client's process collector.
    "process_resident_memory_bytes": "gauge",
    "process_cpu_seconds_total": "counter",
}

# kube-state-metrics series used for the pod panels and PostServiceNoReadyPod.
KUBE_STATE_METRICS: dict[str, MetricType] = {
    "kube_pod_status_ready": "gauge",
    "kube_pod_container_status_restarts_total": "counter",
}

# Series Prometheus itself attaches to every scrape target.
PROMETHEUS_METRICS: dict[str, MetricType] = {
    "up": "gauge",
}


def sample_names(families: dict[str, MetricType]) -> frozenset[str]:
    """The sample names of ``families`` as they appear in PromQL and the exposition format."""
    names: set[str] = set()
    for name, kind in families.items():
        if kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(name)
    return frozenset(names)


SERVICE_SAMPLE_NAMES = sample_names(SERVICE_METRICS)
ALLOWED_SAMPLE_NAMES = (
    SERVICE_SAMPLE_NAMES | sample_names(KUBE_STATE_METRICS) | sample_names(PROMETHEUS_METRICS)
)
