"""What the benchmark reads about this machine and its processes, from /proc (Linux only)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024
SERVER_CPU = 0  # the server under test, alone
LOAD_CPU = 1  # everything else: ghz, PostgreSQL, Kafka, the stand-in, the harness


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3 (index 0 here), utime 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size, as /proc/<pid>/statm counts it (what `ps` and the kubelet show)."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE


def rss_mib(pid: int) -> float:
    return rss_bytes(pid) / MIB


def children_of(pid: int) -> list[int]:
    """Every process whose ancestors include ``pid`` (not ``pid`` itself)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        kids = [child for child, ppid in parents.items() if ppid == parent]
        found += kids
        frontier += kids
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and all its descendants, live or exited (a postmaster's backends).

    A live process counts its own utime+stime; an exited one counts in its parent's cutime+
    cstime once reaped, so adding both for every member never counts anything twice and the
    total does not drop when a backend exits.
    """
    total = 0.0
    for member in (pid, *children_of(pid)):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited between the listing and the read
        total += sum(int(value) for value in fields[11:15]) / CLOCK_TICKS
    return total


def affinity(pid: int) -> list[int]:
    return sorted(os.sched_getaffinity(pid))


def pin_tree(pid: int, cpus: set[int]) -> None:
    """Pin every thread of ``pid`` and of its descendants to ``cpus``."""
    for member in (pid, *children_of(pid)):
        for task in Path(f"/proc/{member}/task").iterdir():
            try:
                os.sched_setaffinity(int(task.name), cpus)
            except OSError:
                continue


@dataclass(frozen=True)
class CoreTimes:
    """Cumulative busy and total jiffies per CPU, from /proc/stat."""

    busy: dict[int, int]
    total: dict[int, int]
    steal: dict[int, int]

    @classmethod
    def now(cls) -> CoreTimes:
        busy: dict[int, int] = {}
        total: dict[int, int] = {}
        steal: dict[int, int] = {}
        for line in Path("/proc/stat").read_text().splitlines():
            match = re.match(r"cpu(\d+)\s+(.*)", line)
            if match is None:
                continue
            values = [int(v) for v in match.group(2).split()]
            idle = values[3] + values[4]  # idle + iowait
            cpu = int(match.group(1))
            total[cpu] = sum(values[:8])  # guest time is already inside user
            steal[cpu] = values[7]  # the hypervisor ran something else on this vCPU's core
            busy[cpu] = total[cpu] - idle - steal[cpu]
        return cls(busy, total, steal)

    def busy_since(self, earlier: CoreTimes) -> dict[int, float]:
        """Per CPU, the fraction of the time since ``earlier`` that it was busy (0..1)."""
        shares: dict[int, float] = {}
        for cpu, total in self.total.items():
            elapsed = total - earlier.total.get(cpu, 0)
            shares[cpu] = (self.busy[cpu] - earlier.busy.get(cpu, 0)) / elapsed if elapsed else 0.0
        return shares

    def steal_since(self, earlier: CoreTimes) -> dict[int, float]:
        """Per CPU, the fraction of the time since ``earlier`` stolen by the hypervisor."""
        shares: dict[int, float] = {}
        for cpu, total in self.total.items():
            elapsed = total - earlier.total.get(cpu, 0)
            stolen = self.steal[cpu] - earlier.steal.get(cpu, 0)
            shares[cpu] = stolen / elapsed if elapsed else 0.0
        return shares


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def uptime_line() -> str:
    try:
        return subprocess.run(
            ["uptime"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"load average: {', '.join(map(str, load_average()))}"


def machine() -> dict[str, object]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    models = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    mhz = re.findall(r"^cpu MHz\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text()
    mem_total = re.search(r"MemTotal:\s+(\d+)", meminfo)
    if mem_total is None:
        raise RuntimeError("/proc/meminfo has no MemTotal line")
    mem_kib = int(mem_total.group(1))
    return {
        "nproc": os.cpu_count(),
        "cpu_model": models[0].strip() if models else platform.processor() or "unknown",
        "cpu_mhz": float(mhz[0]) if mhz else None,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "virtualisation": _virtualisation(),
    }


def _virtualisation() -> str:
    """A hint of the hypervisor, from the kernel command line (Firecracker says so there)."""
    try:
        cmdline = Path("/proc/cmdline").read_text()
    except OSError:
        return "unknown"
    if "firecracker" in cmdline:
        return "Firecracker microVM"
    if " hypervisor" in Path("/proc/cpuinfo").read_text():
        return "virtual machine"
    return "none detected"
