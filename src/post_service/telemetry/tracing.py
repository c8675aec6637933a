"""OpenTelemetry set-up from the standard OTEL_* variables, and trace-context helpers.

Spans are recorded only when an exporter is configured (OTEL_EXPORTER_OTLP_ENDPOINT or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). Without one, the W3C trace context still flows: the
gRPC interceptors run on a no-op provider that carries the caller's context unrecorded,
so User-service calls and Kafka events continue the caller's trace either way.
"""

from __future__ import annotations

import os

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

# Set by the Helm chart from the downward API.
_KUBERNETES_ATTRIBUTES = {
    "k8s.pod.name": "K8S_POD_NAME",
    "k8s.namespace.name": "K8S_NAMESPACE_NAME",
    "k8s.node.name": "K8S_NODE_NAME",
}


def exporter_configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "none":
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def build_resource(version: str) -> Resource:
    """Service name/version and the pod's place; OTEL_RESOURCE_ATTRIBUTES is merged in."""
    attributes: dict[str, str] = {
        "service.name": os.environ.get("OTEL_SERVICE_NAME", "post-service"),
        "service.version": version,
    }
    for attribute, variable in _KUBERNETES_ATTRIBUTES.items():
        if os.environ.get(variable):
            attributes[attribute] = os.environ[variable]
    return Resource.create(attributes)


def tracer_provider_from_environment(version: str) -> TracerProvider | None:
    """An OTLP-exporting provider (sampler from OTEL_TRACES_SAMPLER), or None when off."""
    if not exporter_configured():
        return None
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=build_resource(version))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def current_trace_context() -> dict[str, str]:
    """The W3C traceparent/tracestate of the current span, for an outbox row."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier
