"""The Helm chart on a real Kubernetes cluster, installed and operated as an SRE would.

One release for the module, in the order an operator meets things: dependencies from the dev
manifests, ``helm install --wait`` (migration hook first), ``helm test``, the v1 contract and
Kafka from inside the cluster, the PodDisruptionBudget, calls through rollouts and scaling, the
HPA, a database outage, and ``helm uninstall``. The tests run in file order and leave the
release as they found it (two Ready replicas, PostgreSQL up), except the last, which removes it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devenv.cluster.crds import prometheus_operator_crds

from .kube import Figures, Kube, eventually

NAMESPACE = "forum"
RELEASE = "post-service"
SERVER = "app.kubernetes.io/instance=post-service,app.kubernetes.io/component=server"
CHART = Path(__file__).resolve().parents[2] / "charts" / "post-service"
VALUES = Path(__file__).with_name("values-cluster.yaml")
MAX_CONNECTION_AGE_SECONDS = 10  # values-cluster.yaml


def timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def deps(kube: Kube, figures: Figures) -> Kube:
    """The namespace, the monitoring CRDs and the dev dependencies from deploy/dev/, Ready."""
    kube.kubectl("create", "namespace", NAMESPACE)
    for crd in prometheus_operator_crds("servicemonitors", "prometheusrules"):
        kube.kubectl("apply", "--server-side", "-f", str(crd))
    kube.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/servicemonitors.monitoring.coreos.com",
        "crd/prometheusrules.monitoring.coreos.com",
    )
    started = time.monotonic()
    kube.apply(kube.dev_manifests("postgres", "kafka", "user-service"), NAMESPACE)
    for name in ("postgres", "kafka", "user-service"):
        kube.kubectl("rollout", "status", f"deployment/{name}", "-n", NAMESPACE, "--timeout=300s")
    figures["dependencies_ready_seconds"] = round(time.monotonic() - started, 1)
    return kube


def helm_values(kube: Kube, *extra: str) -> list[str]:
    repository, tag = kube.images["post-service"].split(":", 1)
    return [
        "-f",
        str(VALUES),
        "--set",
        f"image.repository={repository}",
        "--set",
        f"image.tag={tag}",
        *extra,
    ]


@pytest.fixture(scope="module")
def release(deps: Kube, figures: Figures) -> Iterator[Kube]:
    kube = deps
    started = time.monotonic()
    kube.helm_run(
        "install",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--wait",
        "--timeout",
        "5m",
        *helm_values(kube),
    )
    figures["helm_install_to_ready_seconds"] = round(time.monotonic() - started, 1)
    yield kube
    kube.helm_run("uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False)


def upgrade(release: Kube, *sets: str) -> None:
    """`helm upgrade --wait` of the release with the test values and ``sets``."""
    release.helm_run(
        "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--wait", "--timeout", "5m",
        *helm_values(release, *sets),
    )  # fmt: skip


def test_dependencies_run_from_the_dev_manifests_with_local_images(deps: Kube) -> None:
    for name, image in (
        ("postgres", "post-service-dev-postgres"),
        ("kafka", "post-service-dev-kafka"),
        ("user-service", "user-service-stub"),
    ):
        (pod,) = deps.pods(NAMESPACE, f"app.kubernetes.io/name={name}")
        assert Kube.ready(pod), name
        (container,) = pod["status"]["containerStatuses"]
        assert container["image"].endswith(deps.images[image].split("/")[-1]), container["image"]


def test_install_migrates_in_the_hook_before_any_server_pod_starts(release: Kube) -> None:
    events = release.json(
        "get", "events", "-n", NAMESPACE, "--field-selector", "involvedObject.kind=Job"
    )["items"]
    completed = [
        e
        for e in events
        if e["reason"] == "Completed" and e["involvedObject"]["name"] == f"{RELEASE}-migrate"
    ]
    assert completed, "the migration hook Job never completed"
    finished = max(timestamp(e.get("lastTimestamp") or e["eventTime"]) for e in completed)
    pods = release.pods(NAMESPACE, SERVER)
    assert len(pods) == 2
    for pod in pods:
        assert timestamp(pod["metadata"]["creationTimestamp"]) >= finished
    # The hook and its own ConfigMap/Secret/ServiceAccount are gone once it succeeded.
    leftovers = release.kubectl(
        "get", "job,configmap,serviceaccount", "-n", NAMESPACE, "-o", "name"
    ).stdout
    assert f"{RELEASE}-migrate" not in leftovers


def test_server_pods_become_ready_through_native_grpc_probes(release: Kube) -> None:
    for pod in release.pods(NAMESPACE, SERVER):
        (container,) = pod["spec"]["containers"]
        assert container["readinessProbe"]["grpc"] == {"port": 50054, "service": "post.Post"}
        assert container["livenessProbe"]["grpc"]["service"] == "liveness"
        assert Kube.ready(pod)
        assert Kube.restarts(pod) == 0


def test_helm_test_passes(release: Kube) -> None:
    result = release.helm_run("test", RELEASE, "-n", NAMESPACE, "--timeout", "2m")
    assert "Succeeded" in result.stdout, result.stdout


def test_contract_events_and_user_deletion_through_the_service_name(release: Kube) -> None:
    release.client_pod(
        NAMESPACE, "contract", ["contract", "--target", f"{RELEASE}:50054", "--author", "7"]
    )
    lines = {line["step"]: line for line in release.wait_client_done(NAMESPACE, "contract", 240)}
    v1 = lines["v1"]
    assert v1["created_username"] == "user-7"  # from the in-cluster User-service stub
    assert v1["fetched_title"] == "In-cluster"
    assert v1["post_id"] in v1["listed_ids"]
    assert lines["event"]["event_type"] == "post.created"
    assert lines["event"]["post"]["author_id"] == 7
    assert lines["deleted"]["remaining"] == 0  # the `delete` message removed the user's posts


def test_network_policy_serves_the_gateway_and_refuses_other_pods(release: Kube) -> None:
    """kube-router enforces the chart's NetworkPolicy: only the API gateway's pods get in."""
    target = ["reach", "--target", f"{RELEASE}:50054", "--seconds", "20"]
    release.client_pod(NAMESPACE, "gateway", target, gateway=True)
    release.client_pod(NAMESPACE, "stranger", target, gateway=False)
    (gateway,) = release.wait_client_done(NAMESPACE, "gateway", 120)
    (stranger,) = release.wait_client_done(NAMESPACE, "stranger", 120)
    assert gateway["served"] is True
    assert stranger["served"] is False, stranger
    assert stranger["attempts"] > 5  # refused every time for 20 s, not just once


def test_monitoring_objects_are_validated_by_the_api_server(release: Kube) -> None:
    names = release.kubectl(
        "get", "servicemonitors,prometheusrules", "-n", NAMESPACE, "-o", "name"
    ).stdout.split()
    assert f"servicemonitor.monitoring.coreos.com/{RELEASE}" in names
    assert f"prometheusrule.monitoring.coreos.com/{RELEASE}" in names
    broken = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "broken", "namespace": NAMESPACE},
        "spec": {"selector": {}, "endpoints": [{"port": "metrics", "interval": "every 30s"}]},
    }
    refused = release.kubectl("apply", "-f", "-", input=json.dumps(broken), check=False)
    assert refused.returncode != 0
    assert "interval" in refused.stderr


def test_pdb_refuses_to_evict_the_last_available_pod(release: Kube, figures: Figures) -> None:
    first, second = (p["metadata"]["name"] for p in release.pods(NAMESPACE, SERVER))

    def evict(pod: str) -> tuple[int, dict[str, Any]]:
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod, "namespace": NAMESPACE},
        }
        return release.api_post(f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}/eviction", body)

    status, _ = evict(first)
    assert status in (200, 201)
    status, answer = evict(second)  # the other pod is now the last available one
    assert status == 429, answer
    assert "disruption budget" in answer.get("message", "")
    release.kubectl("rollout", "status", f"deployment/{RELEASE}", "-n", NAMESPACE, "--timeout=180s")
    eventually(
        "two Ready replicas again",
        lambda: sum(Kube.ready(p) for p in release.pods(NAMESPACE, SERVER)) == 2,
        180,
    )


def test_rollout_and_scaling_lose_no_call_and_new_replicas_get_traffic(
    release: Kube, figures: Figures
) -> None:
    release.client_pod(
        NAMESPACE,
        "calls",
        [
            "calls",
            "--target",
            f"{RELEASE}:50054",
            "--workers",
            "8",
            "--pause",
            "0.05",
            "--seconds",
            "600",
        ],
    )
    eventually(
        "the client calling",
        lambda: any(
            line["step"] == "progress" and line.get("OK", 0) > 0
            for line in release.client_lines(NAMESPACE, "calls")
        ),
        120,
    )

    phases = [("calling", time.time())]  # wall-clock marks, to place any failure
    # A rolling upgrade (a changed pod template), while the client calls.
    upgrade(release, "--set", "podAnnotations.rollout=second")
    # 2 -> 1 -> 3 -> 1, while the client calls.
    phases.append(("upgraded; scaling to 1", time.time()))
    scale(release, 1)
    before = {p["metadata"]["name"] for p in release.pods(NAMESPACE, SERVER)}
    phases.append(("scaling to 3", time.time()))
    scale(release, 3)
    pods = release.pods(NAMESPACE, SERVER)
    new = {p["metadata"]["name"] for p in pods} - before
    assert len(new) == 2
    ready_since = max(ready_time(p) for p in pods if p["metadata"]["name"] in new)

    def first_calls() -> dict[str, int] | None:
        served = {pod: release.served_calls(NAMESPACE, pod, "GetByIdPost") for pod in new}
        return served if all(served.values()) else None

    # The client's channels were all connected to the old pod: new pods get calls only after
    # the server's GOAWAY at GRPC_MAX_CONNECTION_AGE makes the channels reconnect.
    eventually("calls on every new replica", first_calls, 12 * MAX_CONNECTION_AGE_SECONDS, 0.5)
    # Seen at most this long after the later of the two became Ready (a bound: the metrics are
    # polled every half second).
    waited = (datetime.now(UTC) - ready_since).total_seconds()
    figures["new_replicas_served_within_seconds_of_ready"] = round(waited, 1)
    phases.append(("scaling to 1", time.time()))
    scale(release, 1)
    phases.append(("stopping", time.time()))
    release.stop_client(NAMESPACE, "calls")
    lines = release.wait_client_done(NAMESPACE, "calls", 60)
    done = next(line for line in lines if line["step"] == "done")
    failures = {code: n for code, n in done.items() if code not in ("step", "OK")}
    figures["rollout_calls"] = done.get("OK", 0) + sum(failures.values())
    figures["rollout_failed_calls"] = sum(failures.values())
    assert done.get("OK", 0) > 0
    assert failures == {}, ([line for line in lines if line["step"] == "failure"][:5], phases)
    scale(release, 2)


def ready_time(pod: dict[str, Any]) -> datetime:
    (ready,) = (c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    return timestamp(ready["lastTransitionTime"])


def scale(kube: Kube, replicas: int) -> None:
    kube.kubectl("scale", f"deployment/{RELEASE}", "-n", NAMESPACE, f"--replicas={replicas}")
    kube.kubectl("rollout", "status", f"deployment/{RELEASE}", "-n", NAMESPACE, "--timeout=180s")
    eventually(
        f"{replicas} server pods",
        lambda: (
            len(
                [
                    p
                    for p in kube.pods(NAMESPACE, SERVER)
                    if not p["metadata"].get("deletionTimestamp")
                ]
            )
            == replicas
        ),
        120,
    )
    eventually(
        f"only {replicas} server pods", lambda: len(kube.pods(NAMESPACE, SERVER)) == replicas, 120
    )


def test_hpa_scales_up_under_cpu_load_and_back_down(release: Kube, figures: Figures) -> None:
    upgrade(release, "--set", "autoscaling.enabled=true", "--set", "podAnnotations.rollout=second")

    def replicas() -> int:
        return int(release.json("get", "deployment", RELEASE, "-n", NAMESPACE)["spec"]["replicas"])

    def metrics_known() -> bool:
        hpa = release.json("get", "hpa", RELEASE, "-n", NAMESPACE)
        return any(
            m.get("resource", {}).get("current", {}).get("averageUtilization") is not None
            for m in hpa.get("status", {}).get("currentMetrics") or []
        )

    eventually("the HPA reading CPU from metrics-server", metrics_known, 180)
    eventually("the HPA at its minimum of 1", lambda: replicas() == 1, 240)
    release.client_pod(
        NAMESPACE,
        "load",
        [
            "load",
            "--target",
            f"{RELEASE}:50054",
            "--workers",
            "8",
            "--pause",
            "0",
            "--seconds",
            "300",
        ],
    )
    started = time.monotonic()
    eventually("a scale-up under load", lambda: replicas() >= 2, 240)
    figures["hpa_scale_up_seconds"] = round(time.monotonic() - started, 1)
    figures["hpa_replicas_under_load"] = replicas()
    release.stop_client(NAMESPACE, "load")
    release.wait_client_done(NAMESPACE, "load", 60)
    stopped = time.monotonic()
    eventually("the scale-down after the load", lambda: replicas() == 1, 300)
    figures["hpa_scale_down_seconds"] = round(time.monotonic() - stopped, 1)
    upgrade(release, "--set", "podAnnotations.rollout=second")
    scale(release, 2)


def test_database_outage_turns_pods_not_ready_without_restarts(
    release: Kube, figures: Figures
) -> None:
    before = {p["metadata"]["name"]: Kube.restarts(p) for p in release.pods(NAMESPACE, SERVER)}
    release.kubectl("scale", "deployment/postgres", "-n", NAMESPACE, "--replicas=0")
    started = time.monotonic()
    eventually(
        "every server pod NotReady",
        lambda: not any(Kube.ready(p) for p in release.pods(NAMESPACE, SERVER)),
        30,
        0.5,
    )
    figures["database_down_to_not_ready_seconds"] = round(time.monotonic() - started, 1)
    release.kubectl("scale", "deployment/postgres", "-n", NAMESPACE, "--replicas=1")
    started = time.monotonic()
    eventually(
        "every server pod Ready again",
        lambda: all(Kube.ready(p) for p in release.pods(NAMESPACE, SERVER)),
        180,
        0.5,
    )
    figures["database_back_to_ready_seconds"] = round(time.monotonic() - started, 1)
    after = {p["metadata"]["name"]: Kube.restarts(p) for p in release.pods(NAMESPACE, SERVER)}
    assert after == before  # the same pods, not one restart


def test_uninstall_leaves_nothing_of_the_release(release: Kube) -> None:
    release.helm_run("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "3m")
    kinds = release.kubectl("api-resources", "--verbs=list", "-o", "name").stdout.split()
    kinds = [
        k
        for k in kinds
        if not k.startswith("events") and "metrics.k8s.io" not in k and k != "componentstatuses"
    ]

    def nothing_left() -> bool:
        left = release.kubectl(
            "get",
            ",".join(kinds),
            "-A",
            "-l",
            f"app.kubernetes.io/instance={RELEASE}",
            "-o",
            "name",
        ).stdout
        return left.strip() == ""

    # The pods go after their Deployment, once their preStop pause and drain are over.
    eventually("no object of the release left", nothing_left, 120)
    secrets = release.kubectl("get", "secrets", "-n", NAMESPACE, "-o", "name").stdout
    assert "sh.helm.release" not in secrets  # Helm's own release records too
