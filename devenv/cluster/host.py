"""What the cluster changes on the host, and how each change is undone.

The node address on ``lo``, the pods' bridge, the CNI firewall plugin's chains, kube-proxy's
rules (``kube-proxy --cleanup``), the kubelet's cgroups and its kernel tunables (it sets
``vm.overcommit_memory``, ``kernel.panic`` and ``kernel.panic_on_oops``: the values found
before are saved in the cluster directory and restored), and the mounts under the cluster's
directory. Every step tolerates finding nothing to undo, so cleaning twice is harmless.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
from pathlib import Path

from devenv.cluster.config import BRIDGE, NODE_IP

KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
CGROUP_ROOT = Path("/sys/fs/cgroup")
KUBELET_CGROUP = "kubepods"


def run(*command: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=60)


def add_node_address() -> None:
    if NODE_IP not in run("ip", "-4", "addr", "show", "dev", "lo").stdout:
        run("ip", "addr", "add", f"{NODE_IP}/32", "dev", "lo", check=True)


def remove_node_address() -> None:
    if NODE_IP in run("ip", "-4", "addr", "show", "dev", "lo").stdout:
        run("ip", "addr", "del", f"{NODE_IP}/32", "dev", "lo")


def save_sysctls(path: Path) -> None:
    """Record the kubelet-touched sysctls, unless a previous run's record is still there."""
    if path.exists():
        return
    values = {name: (Path("/proc/sys") / name).read_text().strip() for name in KUBELET_SYSCTLS}
    path.write_text(json.dumps(values))


def restore_sysctls(path: Path) -> None:
    if not path.exists():
        return
    for name, value in json.loads(path.read_text()).items():
        target = Path("/proc/sys") / name
        if target.read_text().strip() != value:
            target.write_text(value)
    path.unlink()


def unmount_under(directory: Path) -> None:
    """Unmount everything mounted below ``directory``, deepest first."""
    prefix = str(directory.resolve()) + "/"
    for _ in range(3):
        mounts = [
            line.split()[4]
            for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(prefix)
        ]
        if not mounts:
            return
        for mount in sorted(mounts, key=len, reverse=True):
            run("umount", "-l", mount)


def remove_network_leftovers() -> None:
    """The bridge, and the chains of the CNI firewall plugin, kube-proxy and the kubelet."""
    if run("ip", "link", "show", BRIDGE).returncode == 0:
        run("ip", "link", "del", BRIDGE)
    remove_chains()
    destroy_ipsets()


IPTABLES = ("iptables", "ip6tables", "iptables-legacy", "ip6tables-legacy")
OUR_CHAIN_PREFIXES = ("KUBE-", "CNI-")


def remove_chains() -> None:
    """Every KUBE-*/CNI-* chain and the rules jumping to them, in every table and both stacks.

    ``kube-proxy --cleanup`` leaves the kubelet's KUBE-FIREWALL (IPv4 and IPv6) behind. Only
    Kubernetes components and CNI plugins make such chains, and this machine runs no other.
    """
    for tool in IPTABLES:
        for table in ("filter", "nat", "mangle"):
            listed = run(tool, "-t", table, "-S")
            if listed.returncode != 0:
                continue
            rules = listed.stdout.splitlines()
            jumps = [r for r in rules if r.startswith("-A ") and _targets_ours(r)]
            for rule in jumps:
                run(tool, "-t", table, "-D", *shlex.split(rule)[1:])
            chains = [r.split()[1] for r in rules if r.startswith("-N ")]
            for chain in (c for c in chains if c.startswith(OUR_CHAIN_PREFIXES)):
                run(tool, "-t", table, "-F", chain)
            for chain in (c for c in chains if c.startswith(OUR_CHAIN_PREFIXES)):
                run(tool, "-t", table, "-X", chain)


def destroy_ipsets() -> None:
    """kube-router's address sets (KUBE-*), once no rule refers to them any more."""
    listed = run("ipset", "list", "-n")
    for name in listed.stdout.split():
        if name.startswith(OUR_CHAIN_PREFIXES) or name.startswith("kube-router"):
            run("ipset", "destroy", name)


def _targets_ours(rule: str) -> bool:
    """A rule in someone else's chain (FORWARD, INPUT...) that jumps to one of ours."""
    words = shlex.split(rule)
    if words[1].startswith(OUR_CHAIN_PREFIXES):
        return False  # goes with its chain
    return any(
        words[i] in ("-j", "-g") and words[i + 1].startswith(OUR_CHAIN_PREFIXES)
        for i in range(len(words) - 1)
    )


def remove_kubelet_cgroups() -> None:
    """The kubelet's ``kubepods`` hierarchies, emptied once every pod is gone."""
    for controller in CGROUP_ROOT.iterdir():
        top = controller / KUBELET_CGROUP
        if not top.is_dir():
            continue
        for directory in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if directory.is_dir():
                with contextlib.suppress(OSError):
                    directory.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()
