"""The prometheus-operator CRDs, from the YAML its Go module ships.

They are in ``example/prometheus-operator-crd/`` of the module.

The Go module proxy is the only source of it here: ``go mod download`` puts the module in the
module cache once, and the CRD files are read from there.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from devenv.cluster.binaries import go

PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator"
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"
CRD_DIR = "example/prometheus-operator-crd"


def prometheus_operator_crds(*kinds: str) -> list[Path]:
    """The CRD files for ``kinds`` (plural resource names, e.g. ``servicemonitors``)."""
    out = subprocess.run(
        [go(), "mod", "download", "-json", f"{PROMETHEUS_OPERATOR}@{PROMETHEUS_OPERATOR_VERSION}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    directory = Path(json.loads(out)["Dir"]) / CRD_DIR
    return [directory / f"monitoring.coreos.com_{kind}.yaml" for kind in kinds]
