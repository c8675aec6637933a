"""``python -m devenv.cluster``: start the local cluster and keep it until Ctrl-C.

``python -m devenv.cluster clean`` removes what a killed run left behind (processes, mounts,
network changes). While it runs, ``export KUBECONFIG=.cache/cluster/conf/admin.kubeconfig``.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

from devenv.cluster.binaries import ensure_binaries
from devenv.cluster.cluster import LocalCluster


def main(argv: list[str]) -> int:
    cluster = LocalCluster()
    if argv[:1] == ["clean"]:
        cluster.binaries = ensure_binaries()
        cluster.clean()
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with cluster:
        print(f"export KUBECONFIG={cluster.kubeconfig}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
