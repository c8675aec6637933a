"""Helpers for the cluster tests: kubectl and helm, client pods, the raw API (evictions)."""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from devenv.cluster.cluster import LocalCluster
from devenv.cluster.config import API_URL

ROOT = Path(__file__).resolve().parents[2]
CLIENT_SCRIPT = Path(__file__).with_name("incluster_client.py")
Figures = dict[str, Any]
T = TypeVar("T")


def eventually(
    what: str, probe: Callable[[], T | None], timeout: float, interval: float = 1.0
) -> T:
    """Poll ``probe`` until it returns something other than None/False; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true after {timeout:.0f}s")
        time.sleep(interval)


@dataclass
class Kube:
    cluster: LocalCluster
    helm: Path
    images: dict[str, str]

    # -- commands ----------------------------------------------------------------------------

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(*args, input=input, check=check, timeout=timeout)

    def json(self, *args: str) -> Any:
        return self.cluster.kubectl_json(*args)

    def helm_run(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.helm), *args],
            env=self.cluster.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"helm {' '.join(args[:2])} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def apply(self, documents: list[dict[str, Any]], namespace: str) -> None:
        self.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(documents))

    # -- manifests -----------------------------------------------------------------------------

    def dev_manifests(self, *names: str) -> list[dict[str, Any]]:
        """deploy/dev/<name>.yaml, images pointed at the tags built here (as skaffold does)."""
        documents: list[dict[str, Any]] = []
        for name in names:
            text = (ROOT / "deploy" / "dev" / f"{name}.yaml").read_text()
            documents += [d for d in yaml.safe_load_all(text) if d]
        for doc in documents:
            if doc["kind"] in ("Deployment", "StatefulSet"):
                for container in doc["spec"]["template"]["spec"]["containers"]:
                    container["image"] = self.images[container["image"]]
        return documents

    # -- pods --------------------------------------------------------------------------------------

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return list(self.json("get", "pods", "-n", namespace, "-l", selector)["items"])

    @staticmethod
    def ready(pod: dict[str, Any]) -> bool:
        conditions = pod.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    @staticmethod
    def restarts(pod: dict[str, Any]) -> int:
        return sum(s["restartCount"] for s in pod["status"].get("containerStatuses", []))

    def client_pod(self, namespace: str, name: str, args: list[str], gateway: bool = True) -> None:
        """Start a pod running incluster_client.py with the service's image (restricted profile)."""
        configmap = self.kubectl(
            "create",
            "configmap",
            "cluster-client",
            "-n",
            namespace,
            f"--from-file=client.py={CLIENT_SCRIPT}",
            "--dry-run=client",
            "-o",
            "json",
        ).stdout
        self.kubectl("apply", "-f", "-", input=configmap)
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                # The chart's NetworkPolicy admits the API gateway's pods only.
                "labels": {
                    "app.kubernetes.io/name": "api-gateway" if gateway else "cluster-client"
                },
            },
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": 2,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001,
                    "runAsGroup": 10001,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "client",
                        "image": self.images["post-service"],
                        "command": ["python", "/client/client.py", *args],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"cpu": "500m", "memory": "256Mi"},
                        },
                        "volumeMounts": [
                            {"name": "client", "mountPath": "/client"},
                            {"name": "tmp", "mountPath": "/tmp"},
                        ],
                    }
                ],
                "volumes": [
                    {"name": "client", "configMap": {"name": "cluster-client"}},
                    {"name": "tmp", "emptyDir": {}},
                ],
            },
        }
        self.kubectl("delete", "pod", name, "-n", namespace, "--ignore-not-found", "--wait")
        self.kubectl("apply", "-f", "-", input=json.dumps(pod))

    def client_lines(self, namespace: str, name: str) -> list[dict[str, Any]]:
        logs = self.kubectl("logs", name, "-n", namespace, check=False).stdout
        return [json.loads(line) for line in logs.splitlines() if line.startswith("{")]

    def wait_client_done(self, namespace: str, name: str, timeout: float) -> list[dict[str, Any]]:
        def finished() -> str | None:
            phase = self.json("get", "pod", name, "-n", namespace)["status"].get("phase")
            return phase if phase in ("Succeeded", "Failed") else None

        phase = eventually(f"client pod {name} finished", finished, timeout)
        lines = self.client_lines(namespace, name)
        assert phase == "Succeeded", self.kubectl("logs", name, "-n", namespace, check=False).stdout
        return lines

    def stop_client(self, namespace: str, name: str) -> None:
        self.kubectl(
            "exec", name, "-n", namespace, "--", "python", "-c", "open('/tmp/stop', 'w').close()"
        )

    def served_calls(self, namespace: str, pod: str, method: str) -> int:
        """The pod's grpc_server_handled_total of ``method`` (OK), read through the API server."""
        text = self.kubectl(
            "get", "--raw", f"/api/v1/namespaces/{namespace}/pods/{pod}:9464/proxy/metrics"
        ).stdout
        total = 0.0
        pattern = re.compile(r"^grpc_server_handled_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
        for line in text.splitlines():
            match = pattern.match(line)
            if (
                match
                and f'grpc_method="{method}"' in match["labels"]
                and 'grpc_code="OK"' in match["labels"]
            ):
                total += float(match["value"])
        return int(total)

    # -- raw API -------------------------------------------------------------------------------

    def api_post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST to the API server as the admin; returns (HTTP status, decoded body)."""
        pki = self.cluster.layout.pki
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        request = urllib.request.Request(
            API_URL + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, context=context, timeout=30) as response:
                return int(response.status), json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return int(error.code), json.loads(error.read() or b"{}")
