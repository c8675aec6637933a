"""The verdicts: each service run against the ceiling (post.Post) or against v1 (post.v2)."""

from __future__ import annotations

from bench.load import Scenario
from bench.results import CeilingRow, Row, Run, V2Row


def compare(runs: list[Run], scenarios: list[Scenario]) -> list[Row]:
    by_key = {s.key: s for s in scenarios}
    ceilings = {(r.rpc, r.concurrency): r for r in runs if r.server == "ceiling"}
    rows: list[Row] = []
    for run in (r for r in runs if r.server == "service"):
        scenario = by_key[run.scenario]
        if scenario.is_v1:
            rows.append(against_ceiling(run, scenario, ceilings.get((run.rpc, run.concurrency))))
        else:
            rows.append(beside_v1(run, scenario, runs))
    return rows


def against_ceiling(run: Run, scenario: Scenario, ceiling: Run | None) -> CeilingRow:
    ratio = run.load.rps / ceiling.load.rps if ceiling and ceiling.load.rps else None
    checks = {
        f"ratio ≥ {scenario.min_ceiling_ratio:.0%}": (
            ratio is not None and ratio >= scenario.min_ceiling_ratio
        ),
        "zero errors": run.load.errors == 0,
    }
    if scenario.max_p99_ms_at_16 is not None and run.concurrency == 16:
        checks[f"p99 ≤ {scenario.max_p99_ms_at_16:g} ms"] = (
            run.load.p99_ms <= scenario.max_p99_ms_at_16
        )
    return CeilingRow(
        run=run,
        description=scenario.description,
        ceiling_rps=ceiling.load.rps if ceiling else None,
        ratio=ratio,
        target_ratio=scenario.min_ceiling_ratio,
        checks=checks,
    )


def beside_v1(run: Run, scenario: Scenario, runs: list[Run]) -> V2Row:
    baseline = next(
        (
            r
            for r in runs
            if r.server == "service"
            and r.scenario == scenario.baseline
            and r.concurrency == run.concurrency
        ),
        None,
    )
    checks = {"zero errors": run.load.errors == 0}
    if scenario.baseline is not None:
        checks[f"≥ {scenario.baseline} req/s"] = (
            baseline is not None and run.load.rps >= baseline.load.rps
        )
    return V2Row(
        run=run,
        api="post.v2",
        description=scenario.description,
        baseline=scenario.baseline,
        baseline_run=baseline,
        ratio=run.load.rps / baseline.load.rps if baseline and baseline.load.rps else None,
        checks=checks,
    )
