"""Shared constants and helpers for tests/chart (fixtures live in conftest.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Protocol

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "post-service"
DB_URL = "postgresql+asyncpg://post:s3cret@db.example:5432/post_db"

# Kubernetes versions every rendered document is validated against: the oldest the chart
# supports (Chart.yaml kubeVersion) and the newest kubernetes-validate ships.
OLDEST_KUBE = "1.29.0"

Doc = dict[str, Any]

# Named value sets rendered by several tests. "all-features" switches every optional feature
# on (and the non-default alternative where there is a choice).
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {"database": {"url": DB_URL}},
    "all-features": {
        "database": {"existingSecret": "post-db", "existingSecretKey": "url"},
        "image": {
            "repository": "registry.example/forum/post-service",
            "tag": "1.0.0",
            "digest": "sha256:" + "a" * 64,
        },
        "imagePullSecrets": ["regcred"],
        "commonLabels": {"team": "forum"},
        "podAnnotations": {"example.com/owner": "forum"},
        "podLabels": {"tier": "backend"},
        "config": {
            "KAFKA_BOOTSTRAP_SERVERS": "kafka-0.kafka:9092,kafka-1.kafka:9092",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.monitoring:4317",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        },
        "extraEnv": [{"name": "EXTRA", "value": "1"}],
        "extraEnvFrom": [{"secretRef": {"name": "extra-secret"}}],
        "otelResourceAttributes": {"deployment.environment": "prod"},
        "lifecycle": {"preStopPauseSeconds": 5, "nativeSleep": True},
        "topologySpread": {"zones": {"enabled": True}},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "forum"}],
        "affinity": {
            "nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 1,
                        "preference": {
                            "matchExpressions": [
                                {"key": "pool", "operator": "In", "values": ["general"]}
                            ]
                        },
                    }
                ]
            }
        },
        "priorityClassName": "forum-critical",
        "autoscaling": {
            "customMetrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": "grpc_server_started_per_second"},
                        "target": {"type": "AverageValue", "averageValue": "200"},
                    },
                }
            ]
        },
        "podDisruptionBudget": {"maxUnavailable": None, "minAvailable": "50%"},
        "serviceAccount": {"annotations": {"example.com/role": "post-service"}},
        "networkPolicy": {
            "gateway": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "edge"}}
            },
            "monitoring": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
            },
            "egress": {
                "postgres": {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]},
                "kafka": {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "kafka"}
                            }
                        }
                    ]
                },
            },
            "extraEgress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                            }
                        }
                    ],
                    "ports": [{"port": 4317, "protocol": "TCP"}],
                }
            ],
            "extraIngress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"app": "debug"}}}],
                    "ports": [{"port": 50054, "protocol": "TCP"}],
                }
            ],
        },
        "migrations": {"mode": "job", "annotations": {"example.com/audit": "true"}},
        "metrics": {
            "serviceMonitor": {"force": True, "labels": {"release": "kube-prometheus-stack"}},
            "prometheusRule": {"force": True, "labels": {"release": "kube-prometheus-stack"}},
            "grafanaDashboard": {
                "namespace": "monitoring",
                "labels": {"team": "forum"},
                "annotations": {"grafana_folder": "Forum"},
            },
        },
    },
    "minimal": {
        "database": {"url": DB_URL},
        "autoscaling": {"enabled": False},
        "replicaCount": 1,
        "podDisruptionBudget": {"enabled": False},
        "networkPolicy": {"enabled": False},
        "migrations": {"enabled": False},
        "serviceAccount": {"create": False, "name": "shared"},
        "topologySpread": {"nodes": {"enabled": False}},
        "metrics": {
            "serviceMonitor": {"enabled": False},
            "prometheusRule": {"enabled": False},
            "grafanaDashboard": {"enabled": False},
        },
        "helmTest": {"enabled": False},
    },
}


def run(
    command: list[str | Path], *, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def values_file(values_dir: Path, name: str) -> Path:
    """The file for a VALUE_SETS entry, or the chart's dev values for "dev"."""
    if name == "dev":
        return CHART / "values-dev.yaml"
    return values_dir / f"{name}.yaml"


class TemplateFn(Protocol):
    """The helm_template fixture: `helm template` with these arguments, not checked."""

    def __call__(
        self, *args: str | Path, release: str = ...
    ) -> subprocess.CompletedProcess[str]: ...


class RenderFn(Protocol):
    """The render fixture: a VALUE_SETS entry (plus helm arguments) rendered and parsed."""

    def __call__(
        self, value_set: str, *extra: str, kube_version: str | None = ..., release: str = ...
    ) -> list[Doc]: ...


def find(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    matches = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def find_all(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def pod_spec(doc: Doc) -> Doc:
    spec: Doc = doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]
    return spec


def hook_weight(doc: Doc) -> int:
    return int(doc["metadata"]["annotations"]["helm.sh/hook-weight"])
