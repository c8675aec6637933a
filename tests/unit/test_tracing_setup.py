from __future__ import annotations

import pytest

from post_service.telemetry.tracing import build_resource, exporter_configured


def test_resource_names_the_service_version_and_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K8S_POD_NAME", "post-service-abc")
    monkeypatch.setenv("K8S_NAMESPACE_NAME", "forum")
    monkeypatch.setenv("K8S_NODE_NAME", "node-1")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    attributes = build_resource("1.2.3").attributes
    assert attributes["service.name"] == "post-service"
    assert attributes["service.version"] == "1.2.3"
    assert attributes["k8s.pod.name"] == "post-service-abc"
    assert attributes["k8s.namespace.name"] == "forum"
    assert attributes["k8s.node.name"] == "node-1"
    assert attributes["deployment.environment"] == "staging"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_spans_are_exported_only_when_an_endpoint_is_set(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: bool
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                 "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert exporter_configured() is expected
