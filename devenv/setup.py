"""Installs everything the test suite needs before any test runs: `make test`'s set-up step.

Tests and fixtures then only find their tools (pytest sets ``DEVENV_NO_INSTALL=1``, so a
fixture that would install a package fails instead, naming this command). Idempotent and
quick when all is present (a few filesystem checks); the first run on a new machine installs
Debian packages in one apt-get call, fetches the Kafka jars from Maven Central and builds the
pinned Go tools and the Kubernetes binaries (about 15 minutes on 2 cores, then cached).

Command line: ``python -m devenv.setup`` (what ``make test`` runs).
"""

from __future__ import annotations

import glob
import sys
import time
from collections.abc import Callable

from devenv.apt import apt_install
from devenv.cluster.binaries import ensure_binaries
from devenv.cluster.cluster import DEBIAN_PACKAGES as CLUSTER_PACKAGES
from devenv.gotools import ensure_go_tool
from devenv.kafka_jars import ensure_kafka_jars

# Debian package -> a file it installs (present = installed).
PACKAGES: dict[str, str] = {
    "postgresql": "/usr/lib/postgresql/*/bin/postgres",
    "prometheus": "/usr/bin/promtool",
    "docker.io": "/usr/sbin/dockerd",
    "mmdebstrap": "/usr/bin/mmdebstrap",
    **CLUSTER_PACKAGES,
}
GO_TOOLS = ("helm", "grpcurl", "kind")


def missing_packages() -> list[str]:
    return [package for package, path in PACKAGES.items() if not glob.glob(path)]


def install_packages() -> str:
    missing = missing_packages()
    if missing:
        apt_install(*missing, why="setup")
    installed = f", installed {' '.join(missing)}" if missing else ""
    return f"{len(PACKAGES)} packages present{installed}"


def install_go_tools() -> str:
    return ", ".join(f"{name} {ensure_go_tool(name)}" for name in GO_TOOLS)


def install_kafka() -> str:
    return str(ensure_kafka_jars())


def install_kubernetes() -> str:
    return ", ".join(sorted(ensure_binaries()))


STEPS: tuple[tuple[str, Callable[[], str]], ...] = (
    ("Debian packages", install_packages),
    ("Kafka jars", install_kafka),
    ("Go tools", install_go_tools),
    ("Kubernetes binaries", install_kubernetes),
)


def main() -> int:
    for name, step in STEPS:
        started = time.monotonic()
        print(f"setup: {name} ...", file=sys.stderr, flush=True)
        done = step()
        elapsed = time.monotonic() - started
        print(f"setup: {name}: {done} ({elapsed:.1f} s)", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
