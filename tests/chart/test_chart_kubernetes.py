"""`helm lint --strict` and offline Kubernetes schema validation of everything the chart renders."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from .chartlib import CHART, OLDEST_KUBE, Doc, RenderFn, find, find_all, run, values_file

NEWEST_KUBE = kubernetes_validate.latest_version()
KUBE_VERSIONS = [OLDEST_KUBE, NEWEST_KUBE]
VALUE_SET_NAMES = ["defaults", "all-features", "minimal", "dev"]
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}


def validate_k8s(doc: Doc, kube_version: str) -> None:
    """Strict OpenAPI-schema validation (unknown fields fail) of one built-in object."""
    try:
        kubernetes_validate.validate(doc, kube_version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        pytest.fail(
            f"{doc['kind']}/{doc['metadata']['name']} is invalid for Kubernetes {kube_version} "
            f"at {path}: {exc.message}"
        )


@pytest.mark.parametrize("value_set", ["defaults", "all-features", "dev"])
def test_helm_lint_strict(helm: Path, values_dir: Path, value_set: str) -> None:
    result = run([helm, "lint", "--strict", CHART, "-f", values_file(values_dir, value_set)])
    assert "0 chart(s) failed" in result.stdout


def test_newest_kubernetes_is_recent() -> None:
    major, minor = (int(x) for x in NEWEST_KUBE.split(".")[:2])
    assert (major, minor) >= (1, 33), f"kubernetes-validate only ships up to {NEWEST_KUBE}"


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("value_set", VALUE_SET_NAMES)
def test_rendered_objects_match_kubernetes_schemas(
    render: RenderFn, value_set: str, kube_version: str
) -> None:
    docs = render(
        value_set, "--api-versions", "monitoring.coreos.com/v1", kube_version=kube_version
    )
    builtin = [d for d in docs if d["kind"] not in CRD_KINDS]
    assert len(builtin) >= 4
    for doc in builtin:
        validate_k8s(doc, kube_version)


def test_validation_is_not_vacuous(render: RenderFn) -> None:
    """The validator rejects a deployment with a misspelt field and a wrong type."""
    deployment = find(render("defaults"), "Deployment")
    mutations: list[Callable[[Doc], None]] = [
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update({"livenesProbe": {}}),
        lambda d: d["spec"]["template"]["spec"].update({"terminationGracePeriodSeconds": "35"}),
    ]
    for mutate in mutations:
        broken = copy.deepcopy(deployment)
        mutate(broken)
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, NEWEST_KUBE, strict=True)


def _assert_keys(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(obj) - allowed
    assert not unknown, f"{where}: unknown fields {sorted(unknown)}"


def test_service_monitor_structure(render: RenderFn) -> None:
    docs = render("all-features")
    sm = find(docs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    _assert_keys(sm, {"apiVersion", "kind", "metadata", "spec"}, "ServiceMonitor")
    spec = sm["spec"]
    _assert_keys(spec, {"selector", "namespaceSelector", "endpoints"}, "ServiceMonitor.spec")
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = find(docs, "Service")
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items(), "selects the Service"
    assert spec["namespaceSelector"] == {"matchNames": ["forum"]}
    (endpoint,) = spec["endpoints"]
    _assert_keys(endpoint, {"port", "path", "scheme", "interval", "scrapeTimeout"}, "endpoint")
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["port"] == "metrics"
    assert endpoint["port"] in port_names
    assert endpoint["path"] == "/metrics"
    for key in ("interval", "scrapeTimeout"):
        assert isinstance(endpoint[key], str)
        assert endpoint[key][-1] in "smh"


def test_prometheus_rule_structure(render: RenderFn) -> None:
    import yaml

    rule = find(render("all-features"), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    _assert_keys(rule, {"apiVersion", "kind", "metadata", "spec"}, "PrometheusRule")
    _assert_keys(rule["spec"], {"groups"}, "PrometheusRule.spec")
    source = yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    assert rule["spec"]["groups"] == source["groups"], "groups embedded verbatim"
    assert rule["spec"]["groups"], "at least one group"
    for group in rule["spec"]["groups"]:
        _assert_keys(group, {"name", "interval", "rules", "limit", "labels"}, "group")
        assert group["name"]
        assert group["rules"]
        for r in group["rules"]:
            _assert_keys(
                r,
                {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"},
                "rule",
            )
            assert ("alert" in r) != ("record" in r), f"exactly one of alert/record: {r}"
            assert isinstance(r["expr"], str | int)
            assert str(r["expr"]).strip()


@pytest.mark.parametrize("value_set", ["defaults", "minimal"])
def test_monitoring_crds_follow_cluster_capabilities(render: RenderFn, value_set: str) -> None:
    without = render(value_set)
    assert not find_all(without, "ServiceMonitor")
    assert not find_all(without, "PrometheusRule")
    with_api = render(value_set, "--api-versions", "monitoring.coreos.com/v1")
    expected = 1 if value_set == "defaults" else 0
    assert len(find_all(with_api, "ServiceMonitor")) == expected
    assert len(find_all(with_api, "PrometheusRule")) == expected
