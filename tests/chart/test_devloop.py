"""The kind + skaffold dev loop: skaffold.yaml, kind-config.yaml, deploy/dev/ and the stub.

Skaffold itself cannot be installed here (the Go module proxy refuses
github.com/GoogleContainerTools/skaffold/v2), so skaffold.yaml is checked structurally against
the fields of the skaffold/v4beta14 schema this repository uses, plus cross-checks with the
files and the chart it names. kind-config.yaml is loaded and validated by the real kind
binary, stopped by a stand-in `docker` just before it would create containers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from devenv import gotools

from .chartlib import CHART, ROOT, Doc, RenderFn, find, find_all, pod_spec, run

SKAFFOLD_API = "skaffold/v4beta14"
DEV = ROOT / "deploy" / "dev"

# The subset of the skaffold/v4beta14 schema this repository may use (field names per object).
SKAFFOLD_FIELDS: dict[str, set[str]] = {
    "config": {
        "apiVersion",
        "kind",
        "metadata",
        "requires",
        "build",
        "manifests",
        "deploy",
        "portForward",
        "profiles",
        "test",
        "verify",
        "resourceSelector",
        "customActions",
    },
    "metadata": {"name", "labels", "annotations"},
    "requires": {
        "configs",
        "path",
        "git",
        "googleCloudStorage",
        "googleCloudBuildRepoV2",
        "activeProfiles",
    },
    "build": {
        "artifacts",
        "insecureRegistries",
        "tagPolicy",
        "platforms",
        "local",
        "googleCloudBuild",
        "cluster",
    },
    "local": {"push", "tryImportMissing", "useDockerCLI", "useBuildkit", "concurrency"},
    "artifact": {
        "image",
        "context",
        "sync",
        "requires",
        "hooks",
        "platforms",
        "runtimeType",
        "docker",
    },
    "docker": {
        "dockerfile",
        "target",
        "buildArgs",
        "network",
        "addHost",
        "cacheFrom",
        "cliFlags",
        "pullParent",
        "noCache",
        "cacheTo",
        "squash",
        "secrets",
        "ssh",
    },
    "manifests": {
        "rawYaml",
        "remoteManifests",
        "kustomize",
        "helm",
        "kpt",
        "hooks",
        "transform",
        "validate",
        "output",
    },
    "deploy": {
        "docker",
        "helm",
        "kpt",
        "kubectl",
        "cloudrun",
        "statusCheck",
        "statusCheckDeadlineSeconds",
        "tolerateFailuresUntilDeadline",
        "kubeContext",
        "logs",
    },
    "helm": {"releases", "flags", "hooks", "concurrency"},
    "release": {
        "name",
        "chartPath",
        "remoteChart",
        "valuesFiles",
        "namespace",
        "version",
        "setValues",
        "setValueTemplates",
        "setFiles",
        "createNamespace",
        "wait",
        "recreatePods",
        "skipBuildDependencies",
        "skipTests",
        "useHelmSecrets",
        "repo",
        "upgradeOnChange",
        "overrides",
        "packaged",
        "dependsOn",
    },
    "kubectl": {"remoteManifests", "flags", "defaultNamespace", "hooks"},
    "portForward": {"resourceType", "resourceName", "namespace", "port", "address", "localPort"},
}


def load_configs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def check_fields(obj: dict[str, Any], kind: str, where: str) -> None:
    assert isinstance(obj, dict), f"{where} must be a mapping"
    unknown = set(obj) - SKAFFOLD_FIELDS[kind]
    assert not unknown, f"{where}: fields not in {SKAFFOLD_API}: {sorted(unknown)}"


def check_skaffold_config(config: dict[str, Any], base: Path) -> None:
    name = config.get("metadata", {}).get("name", "?")
    check_fields(config, "config", name)
    assert config["apiVersion"] == SKAFFOLD_API
    assert config["kind"] == "Config"
    check_fields(config["metadata"], "metadata", f"{name}.metadata")
    for req in config.get("requires", []):
        check_fields(req, "requires", f"{name}.requires")
        assert (base / req["path"]).is_file(), req
    build = config.get("build", {})
    check_fields(build, "build", f"{name}.build")
    check_fields(build.get("local", {}), "local", f"{name}.build.local")
    assert build.get("local", {}).get("push") is False, "kind: images are loaded, not pushed"
    for artifact in build.get("artifacts", []):
        check_fields(artifact, "artifact", f"{name}.artifact")
        check_fields(artifact.get("docker", {}), "docker", f"{name}.artifact.docker")
        context = base / artifact.get("context", ".")
        dockerfile = context / artifact.get("docker", {}).get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{artifact['image']}: {dockerfile} missing"
    if "manifests" in config:
        check_fields(config["manifests"], "manifests", f"{name}.manifests")
        for manifest in config["manifests"].get("rawYaml", []):
            assert (base / manifest).is_file(), manifest
    deploy = config.get("deploy", {})
    check_fields(deploy, "deploy", f"{name}.deploy")
    if "kubectl" in deploy:
        check_fields(deploy["kubectl"], "kubectl", f"{name}.deploy.kubectl")
    if "helm" in deploy:
        check_fields(deploy["helm"], "helm", f"{name}.deploy.helm")
        for release in deploy["helm"]["releases"]:
            check_fields(release, "release", f"{name}.release")
    for forward in config.get("portForward", []):
        check_fields(forward, "portForward", f"{name}.portForward")


def test_skaffold_configs_use_the_current_schema() -> None:
    (root_config,) = load_configs(ROOT / "skaffold.yaml")
    check_skaffold_config(root_config, ROOT)
    (deps_config,) = load_configs(DEV / "skaffold.yaml")
    check_skaffold_config(deps_config, DEV)
    assert root_config["requires"] == [{"path": "deploy/dev/skaffold.yaml"}]
    names = {root_config["metadata"]["name"], deps_config["metadata"]["name"]}
    assert len(names) == 2, "module names must be unique (skaffold dev -m ...)"


def test_skaffold_builds_the_service_image_and_deploys_the_chart() -> None:
    (config,) = load_configs(ROOT / "skaffold.yaml")
    (artifact,) = config["build"]["artifacts"]
    assert artifact == {
        "image": "post-service",
        "context": ".",
        "docker": {"dockerfile": "Dockerfile"},
    }
    (release,) = config["deploy"]["helm"]["releases"]
    assert (ROOT / release["chartPath"]).resolve() == CHART
    assert [ROOT / v for v in release["valuesFiles"]] == [CHART / "values-dev.yaml"]
    key = re.sub(r"[^A-Za-z0-9]", "_", artifact["image"])
    assert release["setValueTemplates"] == {
        "image.repository": f"{{{{.IMAGE_REPO_{key}}}}}",
        "image.tag": f"{{{{.IMAGE_TAG_{key}}}}}",
    }


def test_port_forwards_match_the_dev_service(render: RenderFn) -> None:
    (config,) = load_configs(ROOT / "skaffold.yaml")
    (release,) = config["deploy"]["helm"]["releases"]
    docs = render("dev", release=release["name"])
    forwards = config["portForward"]
    assert {(f["resourceType"], f["localPort"]) for f in forwards} == {
        ("service", 50054),
        ("service", 9464),
    }
    for forward in forwards:
        service = find(docs, "Service", forward["resourceName"])
        assert forward["port"] in {p["port"] for p in service["spec"]["ports"]}


def dev_manifests() -> list[Doc]:
    (deps,) = load_configs(DEV / "skaffold.yaml")
    docs: list[Doc] = []
    for manifest in deps["manifests"]["rawYaml"]:
        docs += [d for d in yaml.safe_load_all((DEV / manifest).read_text()) if d]
    return docs


def test_dev_dependency_manifests_are_valid_kubernetes() -> None:
    docs = dev_manifests()
    assert {d["metadata"]["name"] for d in find_all(docs, "Service")} == {
        "postgres",
        "kafka",
        "user-service",
    }
    for doc in docs:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
        if doc["kind"] == "Deployment":
            assert pod_spec(doc)["enableServiceLinks"] is False, doc["metadata"]["name"]
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (stub,) = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "user-service"
    ]
    (deps,) = load_configs(DEV / "skaffold.yaml")
    images = {a["image"] for a in deps["build"]["artifacts"]}
    assert pod_spec(stub)["containers"][0]["image"] in images, "the stub image skaffold builds"


def test_dev_values_point_at_the_dev_dependencies(render: RenderFn) -> None:
    """Secret, addresses and NetworkPolicy peers of values-dev.yaml match deploy/dev/."""
    deps = dev_manifests()
    docs = render("dev")
    secret_ref = pod_spec(find(docs, "Deployment"))["containers"][0]["env"][0]["valueFrom"][
        "secretKeyRef"
    ]
    dev_secret = find(deps, "Secret", secret_ref["name"])
    assert secret_ref["key"] in dev_secret["stringData"]
    url = dev_secret["stringData"][secret_ref["key"]]
    assert url.startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in url
    postgres_env = find(deps, "Secret", "postgres-dev")["stringData"]
    assert f"{postgres_env['POSTGRES_USER']}:{postgres_env['POSTGRES_PASSWORD']}@" in url
    assert url.endswith("/" + postgres_env["POSTGRES_DB"])
    data = find(docs, "ConfigMap", "post-service")["data"]
    assert data["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert data["USER_SERVICE_ADDR"] == "user-service:50055"

    pod_labels = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in find_all(deps, "Deployment")
    }
    policy = find(docs, "NetworkPolicy", "post-service")
    targets = {}
    for rule in policy["spec"]["egress"]:
        ports = {p["port"] for p in rule["ports"]}
        for peer in rule.get("to", []):
            if "podSelector" in peer and "namespaceSelector" not in peer:
                selector = peer["podSelector"]["matchLabels"]
                for name, labels in pod_labels.items():
                    if selector.items() <= labels.items():
                        targets[name] = ports
    assert targets == {"postgres": {5432}, "kafka": {9092}, "user-service": {50055}}


def test_kind_config_is_accepted_by_kind(kind: Path, tmp_path: Path) -> None:
    shim = tmp_path / "bin"
    shim.mkdir()
    docker = shim / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        '  -v) echo "Docker version 99.0.0, build config-check" ;;\n'
        '  info) echo \'{"CgroupDriver":"systemd","CgroupVersion":"2","MemoryLimit":true,'
        '"PidsLimit":true,"CPUShares":true,"SecurityOptions":[]}\' ;;\n'
        "  ps) ;;\n"
        # "the node image is present": no pull (kind retries failed pulls with back-off)
        "  inspect) ;;\n"
        '  *) echo "CONFIG-CHECK-STOP $*" >&2; exit 97 ;;\n'
        "esac\n"
    )
    docker.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}",
        "KIND_EXPERIMENTAL_PROVIDER": "docker",
    }

    def create(config: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(kind),
                "create",
                "cluster",
                "--config",
                str(config),
                "--kubeconfig",
                str(tmp_path / "kubeconfig"),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    result = create(ROOT / "kind-config.yaml")
    output = result.stdout + result.stderr
    # kind decoded and validated the config, then tried to create the first node: the stand-in
    # docker stopped it there.
    assert 'Creating cluster "post-service"' in output, output
    assert "CONFIG-CHECK-STOP" in output, output
    config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    images = {n["image"] for n in config["nodes"]}
    assert len(images) == 1
    tag = images.pop().split("@")[0]
    assert f"Ensuring node image ({tag})" in output, output

    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodez: []\n")
    rejected = create(bad)
    assert rejected.returncode != 0
    assert "nodez" in rejected.stderr
    assert "Creating cluster" not in rejected.stdout + rejected.stderr


def test_user_service_stub_answers_the_contract(grpcurl: Path, tmp_path: Path) -> None:
    proto_dir = ROOT / "proto"
    run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            proto_dir / "user_post" / "user_post.proto",
        ]
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "STUB_ADDR": "127.0.0.1:0"}
    process = subprocess.Popen(
        [sys.executable, str(DEV / "user-service-stub" / "server.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 20
        port = None
        while port is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            match = re.search(r"\(port (\d+)\)", line)
            port = int(match.group(1)) if match else None
        assert port, "stub did not start"

        def call(method: str, body: str) -> str:
            result = run(
                [
                    grpcurl,
                    "-plaintext",
                    "-import-path",
                    proto_dir,
                    "-proto",
                    "user_post/user_post.proto",
                    "-d",
                    body,
                    f"127.0.0.1:{port}",
                    f"user_post.UserPost/{method}",
                ],
                check=False,
                timeout=30,
            )
            return result.stdout + result.stderr

        assert '"username": "user-7"' in call("GetByID", '{"id": 7}')
        ids = call("GetByIDs", '{"ids": [1, 2]}')
        assert '"1": "user-1"' in ids
        assert '"2": "user-2"' in ids
        assert '"id": 42' in call("GetByUsername", '{"username": "user-42"}')
        assert "NotFound" in call("GetByUsername", '{"username": "alice"}')
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_go_tools_are_pinned_and_instant_when_present() -> None:
    for name in ("helm", "kind", "grpcurl", "ghz"):
        tool = gotools.TOOLS[name]
        assert re.fullmatch(r"v\d+\.\d+\.\d+", tool.version), tool
    assert gotools.TOOLS["helm"].version == "v3.22.0"
    started = time.monotonic()
    for name in ("helm", "kind", "grpcurl"):
        binary = gotools.ensure_go_tool(name)
        assert binary.is_file()
        assert os.access(binary, os.X_OK)
        assert (
            gotools.installed_version(binary, gotools.TOOLS[name].module)
            == gotools.TOOLS[name].version
        )
    assert time.monotonic() - started < 10, "no rebuild when the right version is installed"
    helm_version = run([gotools.ensure_go_tool("helm"), "version", "--short"]).stdout
    assert helm_version.startswith("v3.22.0")
    with pytest.raises(gotools.GoToolError):
        gotools.ensure_go_tool("no-such-tool")
