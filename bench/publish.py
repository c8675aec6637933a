"""Writes a run's results: bench-results/<stamp>.json, docs/benchmarks.json and the generated
parts of docs/benchmarks.md (``--no-docs`` writes only the first)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import report
from bench.progress import log, shown
from bench.results import LongRun, Results, as_json
from devenv.grpc_process import ROOT

DOC = ROOT / "docs" / "benchmarks.md"
DOC_JSON = ROOT / "docs" / "benchmarks.json"


def publish_results(results: Results, out_dir: Path, stamp: str, docs: bool) -> dict[str, Any]:
    """Writes the files; the results as JSON (what bench/report.py renders)."""
    data: dict[str, Any] = as_json(results)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    path = out_dir / f"{stamp}.json"
    path.write_text(text)
    log(f"wrote {shown(path)}")
    if docs:
        DOC_JSON.write_text(text)
        report.update_doc(DOC, report.blocks(data))
        log("updated docs/benchmarks.md and docs/benchmarks.json")
    return data


def publish_long(long: LongRun, out_dir: Path, stamp: str, docs: bool) -> None:
    data = as_json(long)
    path = out_dir / f"long-{stamp}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    if docs:
        update = [(report.LONG_BEGIN, report.LONG_END, report.long_markdown(data))]
        report.update_doc(DOC, update)
    log(f"wrote {shown(path)}")
