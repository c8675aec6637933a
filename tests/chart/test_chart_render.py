"""Assertions on what the chart renders (probes, hooks, security, policies, config rollout)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from .chartlib import (
    CHART,
    DB_URL,
    Doc,
    RenderFn,
    TemplateFn,
    find,
    find_all,
    hook_weight,
    pod_spec,
    values_file,
)

VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
GRPC_PORT = 50054
METRICS_PORT = 9464
HOOK_PHASES = {"pre-install", "pre-upgrade"}


def container(doc: Doc, name: str | None = None) -> Doc:
    containers: list[Doc] = pod_spec(doc)["containers"]
    if name is None:
        assert len(containers) == 1
        return containers[0]
    return next(c for c in containers if c["name"] == name)


def workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["kind"] in {"Deployment", "Job", "Pod"}]


def env_map(c: Doc) -> dict[str, Any]:
    return {e["name"]: e for e in c.get("env", [])}


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


# -- Deployment --------------------------------------------------------------------------


def test_probes_are_native_grpc_on_the_numeric_port(render: RenderFn) -> None:
    c = container(find(render("defaults"), "Deployment"))
    expected = {
        "startupProbe": "liveness",
        "livenessProbe": "liveness",
        "readinessProbe": "post.Post",
    }
    for probe, service in expected.items():
        grpc = c[probe]["grpc"]
        assert grpc == {"port": GRPC_PORT, "service": service}, probe
        assert isinstance(grpc["port"], int)
    assert {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"} in c["ports"]
    assert {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"} in c["ports"]


def test_the_server_container_serves_and_never_migrates(render: RenderFn) -> None:
    for value_set in ("defaults", "all-features"):
        deployment = find(render(value_set), "Deployment")
        c = container(deployment, "post-service")
        assert c["command"] == ["post-service"]
        assert c["args"] == ["serve"]
        for other in pod_spec(deployment).get("initContainers", []):
            assert other["command"][:3] == ["post-service", "migrate", "--wait-only"]


def test_settings_come_from_configmap_and_secret(render: RenderFn) -> None:
    docs = render("defaults")
    c = container(find(docs, "Deployment"))
    configmap = find(docs, "ConfigMap", "post-service")
    assert c["envFrom"] == [{"configMapRef": {"name": "post-service"}}]
    data = configmap["data"]
    assert all(isinstance(v, str) for v in data.values())
    assert data["GRPC_PORT"] == str(GRPC_PORT)
    assert data["METRICS_PORT"] == str(METRICS_PORT)
    # Connection recycling for the gateway's long-lived connection (spreads over HPA replicas).
    assert data["GRPC_MAX_CONNECTION_AGE_SECONDS"] == "300"
    assert data["GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS"] == "30"
    assert data["GRPC_MAX_RECEIVE_MESSAGE_BYTES"] == "1048576", "no float formatting"
    assert data["USER_SERVICE_TIMEOUT_SECONDS"] == "0.3"
    assert "KAFKA_BOOTSTRAP_SERVERS" not in data, "empty = unset = Kafka off"
    assert "DB_URL" not in data
    secret = find(docs, "Secret", "post-service")
    assert base64.b64decode(secret["data"]["DB_URL"]).decode() == DB_URL
    db_url = env_map(c)["DB_URL"]["valueFrom"]["secretKeyRef"]
    assert db_url == {"name": "post-service", "key": "DB_URL"}


def test_existing_secret_is_used_and_no_secret_rendered(render: RenderFn) -> None:
    docs = render("all-features")
    assert not find_all(docs, "Secret")
    for doc in workloads(docs):
        for c in pod_spec(doc)["containers"] + pod_spec(doc).get("initContainers", []):
            if "DB_URL" in env_map(c):
                ref = env_map(c)["DB_URL"]["valueFrom"]["secretKeyRef"]
                assert ref == {"name": "post-db", "key": "url"}


def test_downward_api_and_otel_resource_attributes(render: RenderFn) -> None:
    env = env_map(container(find(render("all-features"), "Deployment"), "post-service"))
    fields = {
        name: env[name]["valueFrom"]["fieldRef"]["fieldPath"]
        for name in ("K8S_POD_NAME", "K8S_NAMESPACE_NAME", "K8S_NODE_NAME")
    }
    assert fields == {
        "K8S_POD_NAME": "metadata.name",
        "K8S_NAMESPACE_NAME": "metadata.namespace",
        "K8S_NODE_NAME": "spec.nodeName",
    }
    names = list(env)
    attrs = env["OTEL_RESOURCE_ATTRIBUTES"]["value"]
    assert names.index("OTEL_RESOURCE_ATTRIBUTES") > names.index("K8S_NODE_NAME"), (
        "$(VAR) references only expand variables defined earlier"
    )
    for expected in (
        "k8s.pod.name=$(K8S_POD_NAME)",
        "k8s.namespace.name=$(K8S_NAMESPACE_NAME)",
        "k8s.node.name=$(K8S_NODE_NAME)",
        "k8s.deployment.name=post-service",
        "service.version=1.0.0",
        "deployment.environment=prod",
    ):
        assert expected in attrs.split(",")
    assert env["EXTRA"] == {"name": "EXTRA", "value": "1"}


def test_restricted_pod_security_everywhere(render: RenderFn) -> None:
    for value_set in ("defaults", "all-features"):
        for doc in workloads(render(value_set)):
            spec = pod_spec(doc)
            assert spec["securityContext"]["runAsNonRoot"] is True
            assert isinstance(spec["securityContext"]["runAsUser"], int)
            assert spec["securityContext"]["runAsUser"] > 0
            assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            assert spec["automountServiceAccountToken"] is False
            assert spec["enableServiceLinks"] is False
            tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
            for c in spec["containers"] + spec.get("initContainers", []):
                sc = c["securityContext"]
                assert sc["readOnlyRootFilesystem"] is True
                assert sc["allowPrivilegeEscalation"] is False
                assert sc["runAsNonRoot"] is True
                assert sc["capabilities"] == {"drop": ["ALL"]}
                assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
                mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
                assert mounts.get("/tmp") in tmp_volumes, f"{c['name']}: emptyDir on /tmp"


def test_resources_are_set_and_no_latest_tags(render: RenderFn) -> None:
    for value_set in ("defaults", "all-features", "dev"):
        for doc in workloads(render(value_set)):
            spec = pod_spec(doc)
            for c in spec["containers"] + spec.get("initContainers", []):
                requests = c["resources"]["requests"]
                assert requests["cpu"], c["name"]
                assert requests["memory"], c["name"]
                assert c["resources"]["limits"]["memory"], c["name"]
                image = c["image"]
                name_tag = image.split("@")[0]
                assert ":" in name_tag.rsplit("/", 1)[-1], f"untagged image {image}"
                assert not name_tag.endswith(":latest"), image


def test_image_reference(render: RenderFn) -> None:
    assert container(find(render("defaults"), "Deployment"))["image"] == "post-service:1.0.0"
    digest = "sha256:" + "a" * 64
    image = container(find(render("all-features"), "Deployment"), "post-service")["image"]
    assert image == f"registry.example/forum/post-service:1.0.0@{digest}"


def test_termination_grace_exceeds_app_grace_and_prestop(render: RenderFn) -> None:
    for value_set in ("defaults", "all-features", "dev"):
        docs = render(value_set)
        deployment = find(docs, "Deployment")
        grace = int(find(docs, "ConfigMap", "post-service")["data"]["SHUTDOWN_GRACE_SECONDS"])
        pre_stop = container(deployment, "post-service")["lifecycle"]["preStop"]
        if "sleep" in pre_stop:
            pause = pre_stop["sleep"]["seconds"]
        else:
            command = pre_stop["exec"]["command"]
            assert command[:2] == ["python", "-c"], "no `sleep` binary needed"
            pause = int(command[2].split("sleep(")[1].rstrip(")"))
        assert pod_spec(deployment)["terminationGracePeriodSeconds"] > grace + pause


def test_prestop_variants(render: RenderFn) -> None:
    default = container(find(render("defaults"), "Deployment"))["lifecycle"]["preStop"]
    assert default == {"exec": {"command": ["python", "-c", "import time; time.sleep(5)"]}}
    native = container(find(render("all-features"), "Deployment"), "post-service")
    assert native["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}


def test_too_short_termination_grace_fails(helm_template: TemplateFn, values_dir: Path) -> None:
    result = helm_template(
        "-f", values_file(values_dir, "defaults"), "--set", "terminationGracePeriodSeconds=25"
    )
    assert result.returncode != 0
    assert "terminationGracePeriodSeconds (25) must be greater than" in result.stderr


def test_topology_spread_across_nodes(render: RenderFn) -> None:
    deployment = find(render("defaults"), "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (constraint,) = pod_spec(deployment)["topologySpreadConstraints"]
    assert constraint["topologyKey"] == "kubernetes.io/hostname"
    assert matches(constraint["labelSelector"]["matchLabels"], labels)
    zones = pod_spec(find(render("all-features"), "Deployment"))["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in zones} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }


def test_config_change_rolls_pods(render: RenderFn) -> None:
    def annotations(*extra: str) -> dict[str, str]:
        deployment = find(render("defaults", *extra), "Deployment")
        found: dict[str, str] = deployment["spec"]["template"]["metadata"]["annotations"]
        return found

    base = annotations()
    changed_config = annotations("--set", "config.LOG_LEVEL=DEBUG")
    changed_secret = annotations(
        "--set-string", "database.url=" + DB_URL.replace("s3cret", "other")
    )
    assert base["checksum/config"] != changed_config["checksum/config"]
    assert base["checksum/secret"] == changed_config["checksum/secret"]
    assert base["checksum/secret"] != changed_secret["checksum/secret"]
    assert base == annotations(), "deterministic"


# -- Service, HPA, PDB, ServiceAccount ---------------------------------------------------------


def test_service_ports(render: RenderFn) -> None:
    docs = render("defaults")
    service = find(docs, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["grpc"]["port"] == GRPC_PORT
    assert ports["grpc"]["appProtocol"] == "grpc"
    assert ports["grpc"]["targetPort"] == "grpc"
    assert ports["metrics"]["port"] == METRICS_PORT
    pod_labels = find(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert matches(service["spec"]["selector"], pod_labels)


def test_hpa_targets_the_deployment(render: RenderFn) -> None:
    docs = render("all-features")
    hpa = find(docs, "HorizontalPodAutoscaler")
    deployment = find(docs, "Deployment")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    metrics = hpa["spec"]["metrics"]
    assert metrics[0]["resource"]["name"] == "cpu"
    assert metrics[1]["type"] == "Pods", "custom metric hook"
    assert {"scaleUp", "scaleDown"} <= hpa["spec"]["behavior"].keys()
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    minimal = render("minimal")
    assert not find_all(minimal, "HorizontalPodAutoscaler")
    assert find(minimal, "Deployment")["spec"]["replicas"] == 1


def test_pdb_selects_server_pods(render: RenderFn) -> None:
    docs = render("defaults")
    pdb = find(docs, "PodDisruptionBudget")
    pod_labels = find(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert matches(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    assert pdb["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in pdb["spec"]
    other = find(render("all-features"), "PodDisruptionBudget")["spec"]
    assert other["minAvailable"] == "50%"
    assert "maxUnavailable" not in other


def test_service_account_has_no_token(render: RenderFn) -> None:
    docs = render("defaults")
    for sa in find_all(docs, "ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False
    assert pod_spec(find(docs, "Deployment"))["serviceAccountName"] == "post-service"
    minimal = render("minimal")
    assert not find_all(minimal, "ServiceAccount")
    assert pod_spec(find(minimal, "Deployment"))["serviceAccountName"] == "shared"


# -- NetworkPolicy ---------------------------------------------------------------------------


def test_network_policy_selectors_match_pod_labels(render: RenderFn) -> None:
    docs = render("all-features")
    server = find(docs, "NetworkPolicy", "post-service")
    migrations = find(docs, "NetworkPolicy", "post-service-migrations")
    deployment_labels = find(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    job_labels = find(docs, "Job")["spec"]["template"]["metadata"]["labels"]
    test_labels = find(docs, "Pod")["metadata"]["labels"]
    assert matches(server["spec"]["podSelector"]["matchLabels"], deployment_labels)
    assert not matches(server["spec"]["podSelector"]["matchLabels"], job_labels)
    assert matches(migrations["spec"]["podSelector"]["matchLabels"], job_labels)
    assert not matches(migrations["spec"]["podSelector"]["matchLabels"], deployment_labels)

    grpc_rule, metrics_rule, extra = server["spec"]["ingress"]
    assert grpc_rule["ports"] == [{"port": GRPC_PORT, "protocol": "TCP"}]
    gateway, helm_test = grpc_rule["from"]
    assert gateway["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "api-gateway"}}
    assert gateway["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "edge"}}
    assert matches(helm_test["podSelector"]["matchLabels"], test_labels), "helm test may call"
    assert "namespaceSelector" not in helm_test
    assert metrics_rule["ports"] == [{"port": METRICS_PORT, "protocol": "TCP"}]
    (monitoring,) = metrics_rule["from"]
    assert monitoring["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
    }
    assert monitoring["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
    assert extra["ports"] == [{"port": 50054, "protocol": "TCP"}]

    egress_ports = [
        sorted((p["port"], p["protocol"]) for p in rule["ports"])
        for rule in server["spec"]["egress"]
    ]
    assert egress_ports == [
        [(53, "TCP"), (53, "UDP")],
        [(5432, "TCP")],
        [(9092, "TCP")],
        [(50055, "TCP")],
        [(4317, "TCP")],
    ]
    assert server["spec"]["egress"][1]["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]
    migration_ports = [
        sorted(p["port"] for p in rule["ports"]) for rule in migrations["spec"]["egress"]
    ]
    assert migration_ports == [[53, 53], [5432]]
    assert migrations["spec"]["ingress"] == []
    assert set(server["spec"]["policyTypes"]) == {"Ingress", "Egress"}


def test_default_gateway_namespace_is_the_release_namespace(render: RenderFn) -> None:
    server = find(render("defaults"), "NetworkPolicy", "post-service")
    gateway = server["spec"]["ingress"][0]["from"][0]
    assert set(gateway) == {"podSelector"}, "no namespaceSelector = same namespace"
    assert server["spec"]["egress"][1] == {"ports": [{"port": 5432, "protocol": "TCP"}]}


# -- Migrations --------------------------------------------------------------------------


def test_migration_job_is_a_pre_install_pre_upgrade_hook(render: RenderFn) -> None:
    docs = render("defaults")
    job = find(docs, "Job")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == HOOK_PHASES
    assert set(annotations["helm.sh/hook-delete-policy"].split(",")) == {
        "before-hook-creation",
        "hook-succeeded",
    }
    assert job["spec"]["backoffLimit"] == VALUES["migrations"]["backoffLimit"]
    assert job["spec"]["activeDeadlineSeconds"] == VALUES["migrations"]["activeDeadlineSeconds"]
    c = container(job)
    assert c["command"] == ["post-service", "migrate"]
    assert c["image"] == container(find(docs, "Deployment"))["image"], "same image"
    assert pod_spec(job)["restartPolicy"] == "Never"


def test_everything_the_hook_job_reads_is_an_earlier_hook(render: RenderFn) -> None:
    for value_set, extra in (("defaults", ()), ("all-features", ("--set", "migrations.mode=hook"))):
        docs = render(value_set, *extra)
        job = find(docs, "Job")
        spec = pod_spec(job)
        reads: list[tuple[str, str]] = [("ServiceAccount", spec["serviceAccountName"])]
        for c in spec["containers"]:
            reads += [
                ("ConfigMap", e["configMapRef"]["name"])
                for e in c.get("envFrom", [])
                if "configMapRef" in e
            ]
            reads += [
                ("Secret", e["valueFrom"]["secretKeyRef"]["name"])
                for e in c.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            ]
        checked = 0
        for kind, name in reads:
            rendered = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
            if not rendered:  # not the chart's (existingSecret): must exist before install
                assert (kind, name) == ("Secret", "post-db"), (kind, name)
                continue
            (obj,) = rendered
            annotations = obj["metadata"].get("annotations", {})
            assert set(annotations.get("helm.sh/hook", "").split(",")) == HOOK_PHASES, (kind, name)
            assert hook_weight(obj) < hook_weight(job), (kind, name)
            assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
            checked += 1
        assert checked >= 2


def test_gitops_mode_plain_job_and_wait_for_schema(render: RenderFn) -> None:
    docs = render("all-features")
    job = find(docs, "Job")
    annotations = job["metadata"]["annotations"]
    assert "helm.sh/hook" not in annotations
    assert annotations["argocd.argoproj.io/sync-wave"] == "-1"
    assert job["metadata"]["name"].startswith("post-service-migrate-")
    assert "ttlSecondsAfterFinished" not in job["spec"]
    reads = {
        ("ConfigMap", container(job)["envFrom"][0]["configMapRef"]["name"]),
        ("ServiceAccount", pod_spec(job)["serviceAccountName"]),
    }
    for kind, name in reads:
        obj = find(docs, kind, name)
        assert "helm.sh/hook" not in obj["metadata"].get("annotations", {})
        assert obj["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-2"
    (init,) = pod_spec(find(docs, "Deployment"))["initContainers"]
    assert init["command"] == ["post-service", "migrate", "--wait-only", "--timeout", "270"]
    assert init["image"] == container(job)["image"]
    assert init["envFrom"][0] == {"configMapRef": {"name": "post-service"}}
    # The plain Job gets a new name whenever image or settings change (its spec is immutable).
    other = find(render("all-features", "--set", "config.LOG_LEVEL=DEBUG"), "Job")
    assert other["metadata"]["name"] != job["metadata"]["name"]
    assert len(job["metadata"]["name"]) <= 63


def test_hook_mode_has_no_init_container(render: RenderFn) -> None:
    assert "initContainers" not in pod_spec(find(render("defaults"), "Deployment"))
    minimal = render("minimal")
    assert not find_all(minimal, "Job")
    assert "initContainers" not in pod_spec(find(minimal, "Deployment"))


# -- Monitoring, helm test -----------------------------------------------------------------------


def test_grafana_dashboard_configmap(render: RenderFn) -> None:
    import json

    docs = render("all-features")
    dashboard = find(docs, "ConfigMap", "post-service-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["namespace"] == "monitoring"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "Forum"}
    (content,) = dashboard["data"].values()
    source = (CHART / "files" / "grafana-dashboard.json").read_text()
    assert json.loads(content) == json.loads(source)
    assert not find_all(render("minimal"), "ConfigMap") or all(
        d["metadata"]["name"] != "post-service-dashboard"
        for d in find_all(render("minimal"), "ConfigMap")
    )


def test_helm_test_pod_runs_healthcheck_with_the_service_image(render: RenderFn) -> None:
    docs = render("defaults")
    pod = find(docs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    c = container(pod)
    service = find(docs, "Service")
    assert c["command"][:2] == ["post-service", "healthcheck"]
    args = c["command"][2:]
    addr = args[args.index("--addr") + 1]
    assert addr == f"{service['metadata']['name']}:{GRPC_PORT}"
    assert args[args.index("--service") + 1] == "post.Post"
    assert c["image"] == container(find(docs, "Deployment"))["image"]
    assert pod["spec"]["restartPolicy"] == "Never"


# -- Values validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--set", "ports.grpc=abc"], "/ports/grpc"),
        (["--set", "replicaCount=-1"], "/replicaCount"),
        (["--set", "autoscaling.enabled=yes"], "/autoscaling/enabled"),
        (["--set", "probes.liveness.service=post.Post"], "/probes/liveness/service"),
        (["--set", "image.tag=latest"], "/image/tag"),
        (["--set", "config.LOG_LEVEL=LOUD"], "/config/LOG_LEVEL"),
        (["--set", "config.DB_POOL_SIZE=ten"], "/config/DB_POOL_SIZE"),
        (["--set", "config.NOT_A_SETTING=1"], "NOT_A_SETTING"),
        (["--set", "migrations.mode=sometimes"], "/migrations/mode"),
        (["--set", "networkPolicy.gateway.podSelector=abc"], "/networkPolicy/gateway/podSelector"),
        # Shapes the schema defines once and refers to ($ref): they are still enforced.
        (["--set", "networkPolicy.egress.kafka.ports[0].port=0"], "/networkPolicy/egress/kafka"),
        (
            ["--set", "networkPolicy.gateway.podSelector.matchExpressions[0].operator=Bogus"],
            "/networkPolicy/gateway/podSelector",
        ),
        (["--set-json", "resources.requests.cpu=true"], "/resources/requests/cpu"),
        (["--set", "service.type=LoadBalancer"], "/service/type"),
        (["--set", "securityContext.runAsUser=0"], "/securityContext/runAsUser"),
        (["--set", "typo=1"], "typo"),
    ],
)
def test_wrong_values_fail_schema(
    helm_template: TemplateFn, values_dir: Path, override: list[str], message: str
) -> None:
    result = helm_template("-f", values_file(values_dir, "defaults"), *override)
    assert result.returncode != 0, f"{override} was accepted"
    assert "don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr


def test_missing_database_url_fails_clearly(helm_template: TemplateFn) -> None:
    result = helm_template()
    assert result.returncode != 0
    assert "set database.url" in result.stderr
    assert "database.existingSecret" in result.stderr


def test_no_password_in_default_values() -> None:
    assert VALUES["database"]["url"] == ""
    assert VALUES["database"]["existingSecret"] == ""
    # Comments may say "password"; no value may be one (only the name of a Secret's key).
    lines = (CHART / "values.yaml").read_text().lower().splitlines()
    values = [line.split("#", 1)[0] for line in lines if line.strip() != "passwordkey: password"]
    assert "password" not in "\n".join(values)


def test_every_command_is_accepted_by_the_service_cli(render: RenderFn) -> None:
    """The chart's commands parse with post-service's own argument parser."""
    from post_service.cli import _parser

    commands = []
    for doc in workloads(render("all-features")) + workloads(render("defaults")):
        spec = pod_spec(doc)
        for c in spec["containers"] + spec.get("initContainers", []):
            commands.append(c["command"] + c.get("args", []))
    assert len(commands) >= 5
    for command in commands:
        assert command[0] == "post-service"
        try:
            _parser().parse_args(command[1:])
        except SystemExit:
            pytest.fail(f"post-service rejects {command}")


@pytest.mark.parametrize("value_set", ["defaults", "all-features", "minimal", "dev"])
def test_notes_render(helm: Path, values_dir: Path, tmp_path: Path, value_set: str) -> None:
    """NOTES.txt renders (helm template skips it, so it is wrapped into a ConfigMap here)."""
    import shutil

    from .chartlib import run

    chart = tmp_path / "post-service"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "NOTES.txt").unlink()
    (chart / "templates" / "_notes.tpl").write_text(
        '{{- define "notes.check" -}}\n' + notes + "\n{{- end }}\n"
    )
    (chart / "templates" / "notes-check.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n"
        '{{ include "notes.check" . | indent 4 }}\n'
    )
    result = run(
        [
            helm,
            "template",
            "ps",
            chart,
            "-n",
            "forum",
            "-f",
            values_file(values_dir, value_set),
            "--show-only",
            "templates/notes-check.yaml",
        ]
    )
    text = yaml.safe_load(result.stdout)["data"]["notes"]
    assert "ps-post-service.forum.svc:50054" in text
    assert "<no value>" not in text
    assert ("helm test ps" in text) == (value_set != "minimal")
