"""``--profile``: py-spy profiles of the service under ghz load, after the measured runs."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from bench import profile
from bench.load import Scenario
from bench.measure import Measurer
from bench.progress import log, shown
from bench.results import ProfiledScenario, ProfileFigures
from bench.system import LOAD_CPU
from devenv.grpc_process import ROOT, GrpcProcess

CONCURRENCY = 16
RATE = 100  # samples per second


def profile_service(
    measurer: Measurer,
    service: GrpcProcess,
    scenarios: list[Scenario],
    seconds: float,
    raw_dir: Path,
    stamp: str,
) -> ProfileFigures:
    py_spy = profile.ensure_py_spy()
    figures = ProfileFigures(
        py_spy=profile.PY_SPY_VERSION,
        rate=RATE,
        seconds=seconds,
        concurrency=CONCURRENCY,
        raw_dir=shown(raw_dir),
        scenarios={},
    )
    for scenario in scenarios:
        raw = raw_dir / f"profile-{stamp}-{scenario.key.replace(':', '-')}.txt"
        profiled = _profile_one(measurer, py_spy, service, scenario, seconds, raw)
        if profiled is not None:
            figures.scenarios[scenario.key] = profiled
    return figures


def _profile_one(
    measurer: Measurer,
    py_spy: Path,
    service: GrpcProcess,
    scenario: Scenario,
    seconds: float,
    raw: Path,
) -> ProfiledScenario | None:
    log(f"profile {scenario.key} c={CONCURRENCY}: {seconds:g}s under py-spy")
    ghz = subprocess.Popen(
        measurer.ghz_for(service, scenario, CONCURRENCY, seconds + 2),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(1)
    spy = profile.record(py_spy, service.pid, seconds, raw, rate=RATE, cpu=LOAD_CPU)
    _, spy_errors = spy.communicate(timeout=seconds + 60)
    out, _ = ghz.communicate(timeout=seconds + 60)
    if spy.returncode != 0 or not raw.exists():
        measurer.warnings.append(f"py-spy failed for {scenario.key}: {spy_errors[-500:]!r}")
        return None
    rps = json.loads(out)["rps"] if out.startswith("{") else None
    return ProfiledScenario(rps, profile.summarise(raw))
