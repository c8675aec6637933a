"""One real single-node Kubernetes cluster for the session (devenv/cluster), with the images loaded.

If the cluster cannot come up, every test here fails with the reason: nothing is skipped. The
figures the tests measure are written to ``.cache/cluster/figures.json`` (docs/kubernetes.md).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv.cluster.cluster import LocalCluster, leftovers
from devenv.cluster.workloads import build_and_import_images
from devenv.gotools import GoToolError, ensure_go_tool

from .kube import Figures, Kube

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / ".cache" / "cluster" / "figures.json"


@pytest.fixture(scope="session")
def figures() -> Iterator[Figures]:
    recorded: Figures = {}
    yield recorded
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    print(f"\ncluster figures ({FIGURES}):\n{json.dumps(recorded, indent=2, sort_keys=True)}")


@pytest.fixture(scope="session")
def helm() -> Path:
    try:
        return ensure_go_tool("helm")
    except GoToolError as exc:
        pytest.fail(f"cannot install helm: {exc}")


@pytest.fixture(scope="session")
def cluster(figures: Figures) -> Iterator[LocalCluster]:
    local = LocalCluster()
    try:
        local.start()
    except Exception as exc:
        local.stop()
        pytest.fail(f"the local Kubernetes cluster did not come up: {exc}", pytrace=False)
    try:
        figures.update({f"cluster_{k}": round(v, 1) for k, v in local.timings.items()})
        yield local
    finally:
        local.stop()
        figures["cluster_stop_seconds"] = round(local.timings["stop_seconds"], 1)
    assert leftovers(local) == [], "the cluster's clean-up left these behind"
    # The machine's own access to the package registries still works.
    with socket.create_connection(("pypi.org", 443), timeout=15):
        pass


@pytest.fixture(scope="session")
def kube(cluster: LocalCluster, helm: Path, figures: Figures) -> Kube:
    """The cluster with the service's, the dependencies' and the client's images imported."""
    started = time.monotonic()
    try:
        images = build_and_import_images(cluster)
    except Exception as exc:
        pytest.fail(f"cannot build or load the images: {exc}", pytrace=False)
    figures["images_build_and_import_seconds"] = round(time.monotonic() - started, 1)
    return Kube(cluster=cluster, helm=helm, images=images)
