"""The PromQL of the monitoring content, for the tests that check it: every dashboard target and
variable query, every alerting/recording rule expression, and the substitution of Grafana's
variables so an expression can be sent to a real Prometheus.

Shared by tests/monitoring/test_prometheus_rules.py (a fake exporter) and
tests/e2e/test_metrics.py (the real service scraped by a real Prometheus).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "charts" / "post-service" / "files" / "prometheus-rules.yaml"
DASHBOARD = ROOT / "charts" / "post-service" / "files" / "grafana-dashboard.json"

# Values for Grafana's variables when an expression is sent to a real Prometheus.
GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "30s",
    "__range": "1h",
    "namespace": "posts",
    "job": "post-service",
}


def load_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """All panels, including those nested in collapsed rows."""
    found: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def dashboard_expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, expr) for every panel target and every query variable's series selector."""
    exprs: list[tuple[str, str]] = []
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            where = f"panel {panel['id']} {panel['title']!r} {target['refId']}"
            exprs.append((where, target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query, re.DOTALL)
        exprs.append((f"variable {variable['name']}", match.group(1) if match else query))
    return exprs


def rule_expressions() -> list[tuple[str, str]]:
    exprs: list[tuple[str, str]] = []
    for rule in load_rules():
        name = rule.get("alert") or rule["record"]
        quantile = rule.get("labels", {}).get("quantile")
        exprs.append((f"rule {name}" + (f" q{quantile}" if quantile else ""), rule["expr"]))
    return exprs


def substitute_grafana_variables(
    expr: str, variables: Mapping[str, str] = GRAFANA_VARIABLES
) -> str:
    """``expr`` with every ``$name`` / ``${name}`` / ``${name:format}`` replaced from
    ``variables``; an unknown variable is a ``KeyError``."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return variables[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", value, expr)
