"""Helpers shared by the reliability tests and the soak command (not a test module).

Everything here drives the real process from the outside: gRPC calls timed on the client,
hand-encoded protobuf wire bytes, /proc memory readings and the /metrics page.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from devenv.postgres import LocalPostgres

ROOT = Path(__file__).resolve().parents[2]
FIGURES_FILE = ROOT / ".cache" / "reliability" / "figures.json"

OK = grpc.StatusCode.OK
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
# What a well-behaved service may answer to any request a caller can send.
CLIENT_FAULT_CODES = frozenset(
    {
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)

# A password nobody would type by accident: if it shows up anywhere, it leaked.
SECRET_PASSWORD = "Zq9-reliability-S3CRET-pw-4e1d7b"
SECRET_ROLE = "post_app"


# --- figures: measured numbers, printed at the end of the run and kept for docs/reliability.md ---

_FIGURES: dict[str, Any] = {}
_FIGURES_LOCK = threading.Lock()


def record_figure(name: str, value: Any) -> None:
    with _FIGURES_LOCK:
        _FIGURES[name] = value


def add_to_figure(name: str, amount: int) -> None:
    with _FIGURES_LOCK:
        _FIGURES[name] = int(_FIGURES.get(name, 0)) + amount


def figures() -> dict[str, Any]:
    with _FIGURES_LOCK:
        return dict(_FIGURES)


def save_figures() -> Path | None:
    current = figures()
    if not current:
        return None
    FIGURES_FILE.parent.mkdir(parents=True, exist_ok=True)
    FIGURES_FILE.write_text(json.dumps(current, indent=2, sort_keys=True, default=str) + "\n")
    return FIGURES_FILE


# --- timed calls ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """One RPC as the client saw it; ``started``/``ended`` are time.monotonic() values."""

    rpc: str
    code: grpc.StatusCode
    started: float
    ended: float
    details: str = ""
    response: Any = None

    @property
    def elapsed(self) -> float:
        return self.ended - self.started

    @property
    def ok(self) -> bool:
        return bool(self.code == OK)


def timed_call(rpc: str, method: Callable[..., Any], request: Any, timeout: float) -> Outcome:
    started = time.monotonic()
    try:
        response = method(request, timeout=timeout)
    except grpc.RpcError as error:
        return Outcome(
            rpc, error.code(), started, time.monotonic(), error.details() or "", None
        )  # fmt: skip
    return Outcome(rpc, OK, started, time.monotonic(), "", response)


def percentile(values: Iterable[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def code_counts(outcomes: Iterable[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.code.name] = counts.get(outcome.code.name, 0) + 1
    return counts


# --- protobuf wire format by hand (to send what Python's protobuf refuses to serialise) --------


def varint(value: int) -> bytes:
    """Protobuf base-128 varint; negative numbers as 64-bit two's complement (10 bytes)."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def wire_int(field_number: int, value: int) -> bytes:
    return varint(field_number << 3) + varint(value)


def wire_bytes(field_number: int, value: bytes) -> bytes:
    return varint(field_number << 3 | 2) + varint(len(value)) + value


def raw_unary(channel: grpc.Channel, method: str) -> Callable[..., Any]:
    """A unary method that sends the given bytes as the request and returns the raw reply."""
    call: Callable[..., Any] = channel.unary_unary(
        method, request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw
    )
    return call


# --- the process and its surroundings ---------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc (no psutil needed)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def scrape_metrics(port: int, timeout: float = 2.0) -> str | None:
    """The /metrics page, or None when nothing answers on the port (metrics not wired yet)."""
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return str(response.read().decode("utf-8", errors="replace"))
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def database_answers(cluster: LocalPostgres) -> bool:
    try:
        return cluster.psql("SELECT 1") == "1"
    except RuntimeError:
        return False


def ensure_running(cluster: LocalPostgres) -> None:
    """Start the cluster again if a fault test left it stopped or killed."""
    if not database_answers(cluster):
        cluster.start()


def private_database_url(cluster: LocalPostgres) -> str:
    """A URL for the recognisable-password role of a cluster prepared by ``add_secret_role``."""
    return f"postgresql+asyncpg://{SECRET_ROLE}:{SECRET_PASSWORD}@127.0.0.1:{cluster.port}/post_db"


def add_secret_role(cluster: LocalPostgres) -> str:
    """Give the cluster a login role with the recognisable password, owning post_db.

    A role of its own rather than ALTER USER on ``post``: LocalPostgres's own psql/pg_ctl
    helpers keep authenticating as ``post`` with the fixed devenv password.
    """
    cluster.psql(
        f"CREATE ROLE {SECRET_ROLE} LOGIN PASSWORD '{SECRET_PASSWORD}'", database="postgres"
    )
    cluster.psql(f"ALTER DATABASE post_db OWNER TO {SECRET_ROLE}", database="postgres")
    return private_database_url(cluster)
