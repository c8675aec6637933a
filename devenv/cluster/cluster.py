"""A single-node Kubernetes cluster on this machine, started and removed by one object.

``with LocalCluster() as cluster:`` builds or reuses the binaries (devenv/cluster/binaries.py),
starts a containerd of its own (Debian's package, CRI on, its own socket and root, so Docker's
containerd is left alone), etcd, the API server, controller-manager, scheduler, kubelet,
kube-proxy (iptables mode), and CoreDNS and metrics-server as host processes behind
``kube-system`` Services. On exit it removes the pods, stops what it started and undoes its
changes to the host (devenv/cluster/host.py). One cluster runs on the machine at a time (a lock
file); a run that finds a crashed run's leftovers in its directory cleans them first.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from devenv.apt import apt_install
from devenv.cluster import config, host, pki, processes
from devenv.cluster.binaries import cache_root, ensure_binaries
from devenv.cluster.commands import commands
from devenv.cluster.config import NODE_IP, NODE_NAME, Layout
from devenv.cluster.images import PAUSE_IMAGE, build_pause_archive

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT / ".cache" / "cluster"
DEBIAN_PACKAGES = {
    "containerd": "/usr/bin/containerd",
    "containernetworking-plugins": "/usr/lib/cni/bridge",
    "iptables": "/usr/sbin/iptables",
    "conntrack": "/usr/sbin/conntrack",
    "gcc": "/usr/bin/gcc",
    "libc6-dev": "/usr/lib/x86_64-linux-gnu/libc.a",
    "ipset": "/usr/sbin/ipset",
    "iproute2": "/usr/sbin/ip",
    "openssl": "/usr/bin/openssl",
    "binutils": "/usr/bin/strip",
}
# Stop order: the kubelet first (so it restarts nothing), the runtime last.
DAEMONS = (
    "kubelet",
    "kube-router",
    "metrics-server",
    "coredns",
    "kube-proxy",
    "kube-scheduler",
    "kube-controller-manager",
    "kube-apiserver",
    "etcd",
    "containerd",
)
START_TIMEOUT_SECONDS = 120.0


class ClusterError(RuntimeError):
    """The cluster could not be started or a command against it failed."""


def log(message: str) -> None:
    print(f"cluster: {message}", file=sys.stderr, flush=True)


class LocalCluster:
    """The cluster; ``kubectl()``, ``env`` (KUBECONFIG for helm) and ``import_image()`` use it."""

    def __init__(self, directory: Path = DEFAULT_DIR) -> None:
        self.layout = Layout(directory.resolve())
        self.marker = str(self.layout.root)
        self.binaries: dict[str, Path] = {}
        self.timings: dict[str, float] = {}
        self._lock: IO[str] | None = None
        self._running: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def kubeconfig(self) -> Path:
        return self.layout.kubeconfig("admin")

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def __enter__(self) -> LocalCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- start -----------------------------------------------------------------------------

    def start(self) -> None:
        if os.geteuid() != 0:
            raise ClusterError("the local cluster needs root (network, mounts, cgroups)")
        self._install_packages()
        started = time.monotonic()
        self.binaries = ensure_binaries()
        self.timings["binaries_seconds"] = time.monotonic() - started
        self._take_machine_lock()
        self.clean()  # a crashed run's leftovers in this directory
        started = time.monotonic()
        self._write_files()
        host.add_node_address()
        host.save_sysctls(self.layout.root / "sysctls.json")
        self._start_runtime()
        self._start_control_plane()
        self._start_node()
        self.timings["node_ready_seconds"] = time.monotonic() - started
        self._start_addons()
        self.timings["addons_ready_seconds"] = time.monotonic() - started
        self.wait_for(
            "the metrics API",
            lambda: (
                self.kubectl(
                    "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", check=False
                ).returncode
                == 0
            ),
            watch=("metrics-server", "kube-apiserver"),
        )
        self.timings["metrics_ready_seconds"] = time.monotonic() - started
        log(f"up in {self.timings['metrics_ready_seconds']:.0f}s (API {config.API_URL})")

    def _install_packages(self) -> None:
        missing = [pkg for pkg, path in DEBIAN_PACKAGES.items() if not Path(path).exists()]
        if missing:
            apt_install(*missing, why="cluster")

    def _take_machine_lock(self) -> None:
        path = cache_root() / "cluster.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = path.open("a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another cluster runs on this machine; waiting for it ({path})")
            fcntl.flock(self._lock, fcntl.LOCK_EX)

    def _write_files(self) -> None:
        layout = self.layout
        for directory in (layout.conf / "cni", layout.data, layout.logs, layout.pids):
            directory.mkdir(parents=True, exist_ok=True)
        pki.ensure_pki(layout.pki, pki.identities(NODE_NAME, NODE_IP, config.API_SERVICE_IP))
        for identity in (
            "admin",
            "controller-manager",
            "scheduler",
            "kube-proxy",
            "kubelet",
            "coredns",
            "metrics-server",
        ):
            layout.kubeconfig(identity).write_text(config.kubeconfig(layout, identity))
        (layout.conf / "containerd.toml").write_text(config.containerd_toml(layout, PAUSE_IMAGE))
        (layout.conf / "cni" / "10-pods.conflist").write_text(config.cni_conflist(layout))
        (layout.conf / "kubelet.yaml").write_text(config.kubelet_yaml(layout))
        (layout.conf / "kube-proxy.yaml").write_text(config.kube_proxy_yaml(layout))
        (layout.conf / "Corefile").write_text(config.corefile(layout))
        (layout.conf / "resolv.conf").write_text("")

    def _daemon(self, name: str) -> None:
        command = commands(self.layout, self.binaries)[name]
        self._running[name] = processes.start(name, command, self.layout.logs, self.layout.pids)

    def _start_runtime(self) -> None:
        self._daemon("containerd")
        self.wait_for("containerd", lambda: self.ctr("version", check=False).returncode == 0)
        self.import_image(build_pause_archive(self.layout.data / "pause-image"))

    def _start_control_plane(self) -> None:
        self._daemon("etcd")
        self._daemon("kube-apiserver")
        self.wait_for(
            "the API server",
            lambda: self.kubectl("get", "--raw", "/readyz", check=False).returncode == 0,
            watch=("etcd", "kube-apiserver"),
        )
        self._daemon("kube-controller-manager")
        self._daemon("kube-scheduler")

    def _start_node(self) -> None:
        self._daemon("kubelet")
        self._daemon("kube-proxy")
        self.wait_for(
            f"node {NODE_NAME} Ready",
            self._node_ready,
            watch=("kubelet", "kube-proxy", "kube-controller-manager", "kube-scheduler"),
        )
        self.wait_for(
            "the default service account",
            lambda: self.kubectl("get", "serviceaccount", "default", check=False).returncode == 0,
        )

    def _node_ready(self) -> bool:
        found = self.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
        if found.returncode != 0:
            return False
        conditions = json.loads(found.stdout)["status"].get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _start_addons(self) -> None:
        """CoreDNS and metrics-server on the host, behind kube-system Services; kube-router."""
        ca_b64 = base64.b64encode((self.layout.pki / "ca.crt").read_bytes()).decode()
        self.kubectl("apply", "-f", "-", input=config.bootstrap_objects(ca_b64))
        self._daemon("coredns")
        self._daemon("metrics-server")
        self._daemon("kube-router")
        self.wait_for(
            "CoreDNS",
            lambda: _http_ok(f"http://{NODE_IP}:{config.COREDNS_READY_PORT}/ready"),
            watch=("coredns",),
        )
        self.wait_for(
            "kube-router's policy chains",
            lambda: host.run("iptables", "-S", "KUBE-ROUTER-FORWARD").returncode == 0,
            watch=("kube-router",),
        )
        volumes = config.host_volumes(self.layout.data / "volumes")
        self.kubectl("apply", "-f", "-", input=volumes)

    # -- use -------------------------------------------------------------------------------

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        command = [str(self.binaries["kubectl"]), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(
            command, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise ClusterError(f"`kubectl {' '.join(args)}` failed:\n{result.stderr[-3000:]}")
        return result

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = ["ctr", "--address", str(self.layout.containerd_socket), "-n", "k8s.io", *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        if check and result.returncode != 0:
            raise ClusterError(f"`ctr {' '.join(args)}` failed:\n{result.stderr[-3000:]}")
        return result

    def import_image(self, archive: Path) -> None:
        """Import a ``docker save`` archive into the node's image store."""
        self.ctr("images", "import", str(archive))

    def wait_for(
        self,
        what: str,
        ready: Callable[[], bool],
        timeout: float = START_TIMEOUT_SECONDS,
        watch: tuple[str, ...] = (),
    ) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            for name in watch:
                processes.check_alive(name, self._running[name], self.layout.logs)
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{what} not ready after {timeout:.0f}s; logs in {self.layout.logs}"
                )
            time.sleep(0.5)

    # -- stop ------------------------------------------------------------------------------

    def stop(self) -> None:
        started = time.monotonic()
        try:
            self.clean()
        finally:
            self._running.clear()
            if self._lock is not None:
                self._lock.close()
                self._lock = None
        self.timings["stop_seconds"] = time.monotonic() - started
        log(f"stopped and cleaned in {self.timings['stop_seconds']:.0f}s")

    def clean(self) -> None:
        """Stop every daemon of this directory and undo the host changes (idempotent)."""
        layout = self.layout
        processes.stop("kubelet", layout.pids, self.marker)
        if layout.containerd_socket.exists() and self.binaries.get("crictl"):
            # Stops and removes every pod sandbox through the CRI, so CNI tears down its network.
            subprocess.run(
                [
                    str(self.binaries["crictl"]),
                    "--runtime-endpoint",
                    f"unix://{layout.containerd_socket}",
                    "--timeout",
                    "60s",
                    "rmp",
                    "--all",
                    "--force",
                ],
                capture_output=True,
                timeout=180,
                check=False,
            )
        for name in DAEMONS[1:]:
            processes.stop(name, layout.pids, self.marker)
        for pid in processes.processes_naming(str(layout.containerd_socket)):  # runc shims
            processes.terminate(pid, str(layout.containerd_socket), 10.0)
        if self.binaries.get("kube-proxy"):
            subprocess.run(
                [str(self.binaries["kube-proxy"]), "--cleanup"],
                capture_output=True,
                timeout=120,
                check=False,
            )
        host.unmount_under(layout.data)
        host.remove_network_leftovers()
        host.remove_kubelet_cgroups()
        host.remove_node_address()
        host.restore_sysctls(layout.root / "sysctls.json")
        for socket in layout.root.glob("*.sock*"):
            socket.unlink()
        for directory in (layout.data, layout.pki):  # certificates are made anew each run
            if directory.exists():
                subprocess.run(
                    ["rm", "-rf", "--one-file-system", str(directory)],
                    check=False,
                    capture_output=True,
                    timeout=300,
                )


def leftovers(cluster: LocalCluster) -> list[str]:
    """What of a stopped cluster is still on the host (empty when the clean-up was complete)."""
    found = []
    if NODE_IP in host.run("ip", "-4", "addr", "show", "dev", "lo").stdout:
        found.append(f"{NODE_IP} on lo")
    if host.run("ip", "link", "show", config.BRIDGE).returncode == 0:
        found.append(f"bridge {config.BRIDGE}")
    for tool in host.IPTABLES:
        for table in ("filter", "nat", "mangle"):
            rules = host.run(tool, "-t", table, "-S").stdout.splitlines()
            found += [f"{tool} {table}: {r}" for r in rules if "KUBE-" in r or "CNI-" in r]
    found += [
        f"ipset {name}"
        for name in host.run("ipset", "list", "-n").stdout.split()
        if name.startswith(host.OUR_CHAIN_PREFIXES)
    ]
    found += [f"process {pid}" for pid in processes.processes_naming(cluster.marker)]
    mounts = Path("/proc/self/mountinfo").read_text()
    if cluster.marker + "/" in mounts:
        found.append(f"mounts under {cluster.marker}")
    found += [f"cgroup {p}" for p in host.CGROUP_ROOT.glob(f"*/{host.KUBELET_CGROUP}")]
    return found


def _http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (local address)
            return bool(response.status == 200)
    except OSError:
        return False
