"""``python -m devenv.cluster``: start the local cluster and keep it until Ctrl-C or SIGTERM.

``python -m devenv.cluster clean`` removes what a killed run left behind (processes, mounts,
network changes). While it runs, ``export KUBECONFIG=.cache/cluster/conf/admin.kubeconfig``.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from types import FrameType

from devenv.cluster.binaries import ensure_binaries
from devenv.cluster.cluster import LocalCluster


def _exit(signo: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # unwinds through LocalCluster's clean-up, even while it starts


def main(argv: list[str]) -> int:
    cluster = LocalCluster()
    if argv[:1] == ["clean"]:
        cluster.binaries = ensure_binaries()
        cluster.clean()
        return 0
    signal.signal(signal.SIGTERM, _exit)
    with cluster, contextlib.suppress(KeyboardInterrupt):
        print(f"export KUBECONFIG={cluster.kubeconfig}", flush=True)
        signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
