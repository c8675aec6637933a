"""values.yaml, values.schema.json, README and Chart.yaml stay in step."""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from .chartlib import CHART, DB_URL, ROOT, RenderFn, find

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
README = (CHART / "README.md").read_text()
# Values whose content is free-form Kubernetes/Prometheus structure (maps or lists the schema
# types but does not enumerate); their own keys are not chart values.
FREE_FORM = {
    "commonLabels",
    "podAnnotations",
    "podLabels",
    "nodeSelector",
    "affinity",
    "tolerations",
    "extraEnv",
    "extraEnvFrom",
    "otelResourceAttributes",
    "imagePullSecrets",
    "service.annotations",
    "serviceAccount.annotations",
    "migrations.annotations",
    "autoscaling.customMetrics",
    "autoscaling.behavior.scaleUp.policies",
    "autoscaling.behavior.scaleDown.policies",
    "networkPolicy.extraEgress",
    "networkPolicy.extraIngress",
    "metrics.serviceMonitor.labels",
    "metrics.prometheusRule.labels",
    "metrics.grafanaDashboard.labels",
    "metrics.grafanaDashboard.annotations",
    "resources",
    "migrations.resources",
}


def walk(values: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in values.items():
        path = f"{prefix}{key}"
        yield path, value
        if isinstance(value, dict) and path not in FREE_FORM and not _is_k8s_object(path):
            yield from walk(value, path + ".")


def _is_k8s_object(path: str) -> bool:
    """Selectors, peers, ports and resources are Kubernetes objects, typed by the schema."""
    return bool(re.search(r"(Selector|\.to|\.ports)$", path))


def resolved(node: dict[str, Any]) -> dict[str, Any]:
    """Follows the schema's shared definitions: {"$ref"} and {"allOf": [{"$ref"}], ...}."""
    if "$ref" in node:
        return resolved(SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[1]])
    if "allOf" in node:
        (only,) = node["allOf"]
        return {**resolved(only), **{k: v for k, v in node.items() if k != "allOf"}}
    return node


def schema_at(path: str) -> dict[str, Any]:
    node: dict[str, Any] = SCHEMA
    for part in path.split("."):
        props = resolved(node).get("properties", {})
        assert part in props, f"values.schema.json does not describe {path}"
        node = props[part]
    return resolved(node)


def test_schema_is_valid_and_accepts_defaults() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    jsonschema.Draft7Validator(SCHEMA).validate(VALUES)
    jsonschema.Draft7Validator(SCHEMA).validate(
        _merge(VALUES, yaml.safe_load((CHART / "values-dev.yaml").read_text()))
    )


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def test_schema_covers_every_value() -> None:
    for path, value in walk(VALUES):
        node = schema_at(path)
        assert "type" in node or "oneOf" in node or "enum" in node, f"{path} has no type"
        if isinstance(value, dict) and "properties" in node:
            assert node.get("additionalProperties") is False, f"{path}: additionalProperties"
    assert SCHEMA["additionalProperties"] is False


def test_schema_describes_nothing_that_is_not_a_value() -> None:
    def props(node: dict[str, Any], prefix: str = "") -> Iterator[str]:
        for key, sub in resolved(node).get("properties", {}).items():
            path = f"{prefix}{key}"
            yield path
            if path not in FREE_FORM and not _is_k8s_object(path):
                yield from props(sub, path + ".")

    value_paths = {path for path, _ in walk(VALUES)}
    optional = {"global", "config.OTEL_EXPORTER_OTLP_ENDPOINT"}
    for path in props(SCHEMA):
        assert path in value_paths or path in optional, f"schema key {path} is not in values.yaml"


def test_readme_values_table_covers_every_value() -> None:
    table = {m.group(1) for m in re.finditer(r"^\| `([^`]+)` \|", README, re.MULTILINE)}
    for path, value in walk(VALUES):
        if isinstance(value, dict) and path not in FREE_FORM and not _is_k8s_object(path):
            continue  # parents are documented through their leaves
        if path.startswith("config."):
            assert "config" in table or path in table
            continue
        assert path in table, f"README values table lacks `{path}`"


@pytest.mark.parametrize(
    "heading", ["GitOps", "Argo CD", "--wait", "existingSecret", "NetworkPolicy", "helm test"]
)
def test_readme_documents_trade_offs(heading: str) -> None:
    assert heading in README


def test_chart_app_version_matches_the_package() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
    assert chart["apiVersion"] == "v2"
    assert chart["kubeVersion"].startswith(">=1.29")


def service_setting_names() -> set[str]:
    """The environment variables post_service.config reads (prefix + field name)."""
    from pydantic_settings import BaseSettings

    from post_service.config import Settings

    names: set[str] = set()
    for field in Settings.model_fields.values():
        group = field.annotation
        assert isinstance(group, type), group
        assert issubclass(group, BaseSettings), group
        prefix = group.model_config.get("env_prefix", "")
        names |= {(prefix + name).upper() for name in group.model_fields}
    return names


# Set by the chart itself: the database URLs (from Secrets, `database`) and the listen addresses.
CHART_MANAGED = {"DB_URL", "DB_READ_URL", "GRPC_HOST", "GRPC_PORT", "METRICS_HOST", "METRICS_PORT"}


def test_chart_config_covers_exactly_the_services_settings() -> None:
    service = service_setting_names()
    assert service >= CHART_MANAGED
    chart = {key for key in VALUES["config"] if not key.startswith("OTEL_")}
    assert chart == service - CHART_MANAGED, (
        f"missing from the chart's config: {sorted(service - CHART_MANAGED - chart)}; "
        f"unknown to the service: {sorted(chart - service)}"
    )


@pytest.mark.parametrize("value_set", ["defaults", "all-features", "dev"])
def test_rendered_settings_load_in_the_service(
    render: RenderFn, value_set: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The ConfigMap the chart renders (+ a DB_URL) passes the service's own settings loader."""
    from post_service.config import load_settings

    data = find(render(value_set), "ConfigMap", "post-service")["data"]
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for key in list(os.environ):
        if key.split("_", 1)[0] in {"DB", "GRPC", "USER", "POSTS", "METRICS", "KAFKA", "OUTBOX"}:
            monkeypatch.delenv(key)
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DB_URL", DB_URL)
    settings = load_settings()
    assert settings.grpc.port == int(data["GRPC_PORT"])
    assert settings.runtime.shutdown_grace_seconds == float(data["SHUTDOWN_GRACE_SECONDS"])
    assert settings.kafka.enabled == ("KAFKA_BOOTSTRAP_SERVERS" in data)
