"""The monitoring content: alerting/recording rules, their promtool unit tests, the Grafana
dashboard and the runbooks they point at.

Everything PromQL is checked twice: the metric names against the documented set
(tests/monitoring/metric_names.py), and the syntax/semantics by a real Prometheus
(devenv/prometheus.py installs Debian's package when it is missing).
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from devenv.prometheus import JOB_NAME, LocalPrometheus, ensure_prometheus
from tests.monitoring.expressions import (
    RULES,
    dashboard_expressions,
    dashboard_panels,
    load_dashboard,
    load_rules,
    rule_expressions,
    substitute_grafana_variables,
)
from tests.monitoring.metric_names import ALLOWED_SAMPLE_NAMES

ROOT = Path(__file__).resolve().parents[2]
RULE_TESTS = ROOT / "monitoring" / "prometheus-rules.test.yaml"
RUNBOOK_DOCS = (ROOT / "README.md",)
RUNBOOK_URL_PREFIX = "https://github.com/forum-platform/post-service/blob/main/README.md#"

EXPECTED_ALERTS = {
    "PostServiceHighErrorRatio": "critical",
    "PostServiceHighLatencyP99": "warning",
    "PostServiceOutboxStuck": "warning",
    "PostServiceConsumerLagGrowing": "warning",
    "PostServiceDeadLetters": "warning",
    "PostServiceNoReadyPod": "critical",
    "PostServiceWorkerRestarting": "warning",
}

KSM_POD_MATCHER = 'pod=~"$job-[bcdfghjklmnpqrstvwxz2456789]+-[bcdfghjklmnpqrstvwxz2456789]{5}"'

# --------------------------------------------------------------------------- parameters


def as_params(exprs: list[tuple[str, str]]) -> list[Any]:
    return [pytest.param(where, expr, id=where) for where, expr in exprs]


# --------------------------------------------------------------------------- PromQL names

_PROMQL_KEYWORDS = frozenset(
    {
        # aggregation operators and their modifiers
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
        "bottomk", "topk", "quantile", "by", "without",
        # binary operators and vector matching
        "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "bool",
        # other
        "offset", "inf", "nan",
    }
)  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (a regex parse, good enough for our rules):
    strip string literals, label matchers, ranges and label lists, then keep the identifiers that
    are neither keywords nor function calls."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", r"\1 ", text)
    names: set[str] = set()
    for match in re.finditer(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


def test_metric_name_parser() -> None:
    expr = (
        'sum by (namespace, job) (rate(grpc_server_handled_total{grpc_code=~"A|B", job="x"}[5m]))'
        " / on (namespace) group_left (pod) namespace_job:grpc_server_handled:rate5m"
        ' > 0.5 or absent(up{job="a b"}) unless post_service_consumer_lag offset 10m'
        ' and histogram_quantile(0.99, sum by (le) (rate(x_bucket{a="{b}"}[$__rate_interval])))'
    )
    assert metric_names(expr) == {
        "grpc_server_handled_total",
        "namespace_job:grpc_server_handled:rate5m",
        "up",
        "post_service_consumer_lag",
        "x_bucket",
    }


# --------------------------------------------------------------------------- rule file


def test_promtool_check_rules(promtool: Path) -> None:
    result = subprocess.run(
        [str(promtool), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests(promtool: Path) -> None:
    result = subprocess.run(
        [str(promtool), "test", "rules", str(RULE_TESTS.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alerts_are_the_documented_set_with_severity_and_annotations() -> None:
    alerts = {rule["alert"]: rule for rule in load_rules() if "alert" in rule}
    assert set(alerts) == set(EXPECTED_ALERTS)
    for name, rule in alerts.items():
        assert rule.get("labels", {}).get("severity") == EXPECTED_ALERTS[name], name
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            assert isinstance(annotations.get(key), str), f"{name}: no {key}"
            assert annotations[key].strip(), f"{name}: empty {key}"
        assert annotations["runbook_url"] == f"{RUNBOOK_URL_PREFIX}runbook-{name.lower()}"


def test_recording_rules_are_named_level_metric_operations() -> None:
    records = [rule["record"] for rule in load_rules() if "record" in rule]
    assert records
    for record in records:
        assert re.fullmatch(r"[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z0-9_]+", record), record


def test_unit_tests_cover_every_alert_firing_and_not_firing() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired: set[str] = set()
    silent: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    assert fired >= set(EXPECTED_ALERTS), f"never shown firing: {set(EXPECTED_ALERTS) - fired}"
    assert silent >= set(EXPECTED_ALERTS), f"never shown silent: {set(EXPECTED_ALERTS) - silent}"


def github_heading_anchors(markdown: str) -> set[str]:
    """Anchors GitHub generates for headings (lowercase, punctuation dropped, spaces -> '-'),
    plus explicit <a id/name="..."> anchors."""
    anchors: set[str] = set()
    for line in markdown.splitlines():
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(slug.replace(" ", "-"))
    anchors.update(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", markdown))
    return anchors


def test_every_runbook_url_has_a_runbook_section() -> None:
    anchors: set[str] = set()
    for doc in RUNBOOK_DOCS:
        if doc.exists():
            anchors |= github_heading_anchors(doc.read_text())
    for rule in load_rules():
        if "alert" in rule:
            fragment = rule["annotations"]["runbook_url"].partition("#")[2]
            assert fragment in anchors, f"no runbook heading for #{fragment}"


# --------------------------------------------------------------------------- dashboard


def test_dashboard_structure() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] == "post-service"
    assert dashboard["schemaVersion"] >= 36
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"namespace", "job"} <= set(variables)
    panels = dashboard_panels(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in panels:
        assert panel["gridPos"]["x"] >= 0, panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
            assert "${datasource}" not in target["expr"]


def test_dashboard_has_the_required_panels() -> None:
    exprs = "\n".join(expr for _, expr in dashboard_expressions(load_dashboard()))
    for needle in (
        "rate(grpc_server_handled_total",
        'grpc_code!="OK"',
        'grpc_code=~"Unknown|Internal|Unavailable|DeadlineExceeded|DataLoss|Unimplemented"',
        "histogram_quantile(0.5,",
        "histogram_quantile(0.95,",
        "histogram_quantile(0.99,",
        "grpc_server_handling_seconds_bucket",
        "grpc_client_handled_total",
        "post_service_degraded_responses_total",
        "post_service_outbox_pending_rows",
        "post_service_outbox_oldest_pending_age_seconds",
        "post_service_consumer_lag",
        "post_service_consumer_dead_lettered_total",
        'post_service_db_pool_connections{namespace="$namespace", job="$job", state="in_use"}',
        "post_service_db_pool_size",
        "post_service_worker_restarts_total",
        "kube_pod_status_ready",
        "kube_pod_container_status_restarts_total",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ):
        assert needle in exprs, needle


@pytest.mark.parametrize(("where", "expr"), as_params(dashboard_expressions(load_dashboard())))
def test_dashboard_expression_is_scoped_to_the_release(where: str, expr: str) -> None:
    if where.startswith("variable namespace"):
        return  # the namespace picker itself
    assert 'namespace="$namespace"' in expr, where
    if where.startswith("variable"):
        return
    selectors = re.findall(r'\b[a-z_:][\w:]*\{(?:"(?:[^"\\]|\\.)*"|[^{}"])*\}', expr)
    assert selectors, where
    for selector in selectors:
        assert 'namespace="$namespace"' in selector, f"{where}: {selector}"
        if selector.startswith("kube_"):
            assert KSM_POD_MATCHER in selector, f"{where}: {selector}"
        else:
            assert 'job="$job"' in selector, f"{where}: {selector}"


# --------------------------------------------------------------------------- metric names


def recording_rule_names() -> set[str]:
    return {rule["record"] for rule in load_rules() if "record" in rule}


@pytest.mark.parametrize(
    ("where", "expr"), as_params(dashboard_expressions(load_dashboard()) + rule_expressions())
)
def test_expression_uses_only_documented_metric_names(where: str, expr: str) -> None:
    names = metric_names(expr)
    assert names, f"{where}: no metric name found in {expr!r}"
    unknown = names - ALLOWED_SAMPLE_NAMES - recording_rule_names()
    assert not unknown, f"{where}: undocumented metric(s) {sorted(unknown)} in {expr!r}"


# --------------------------------------------------------------------------- real Prometheus


@pytest.fixture(scope="module")
def promtool() -> Path:
    return ensure_prometheus()[1]


class _FakeExporter(BaseHTTPRequestHandler):
    body = b'post_service_build_info{version="test",python_version="3.12"} 1\n'

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def exporter() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeExporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def prometheus(exporter: str) -> Iterator[LocalPrometheus]:
    with LocalPrometheus([exporter], [RULES], scrape_interval="1s") as prom:
        yield prom


@pytest.mark.parametrize(
    ("where", "expr"), as_params(dashboard_expressions(load_dashboard()) + rule_expressions())
)
def test_real_prometheus_accepts_expression(
    prometheus: LocalPrometheus, where: str, expr: str
) -> None:
    query = substitute_grafana_variables(expr)
    assert "$" not in query, f"{where}: unsubstituted variable in {query!r}"
    payload = prometheus.query(query)  # raises PrometheusError unless status is success
    assert payload["status"] == "success", where


def test_real_prometheus_loads_and_evaluates_the_rules(prometheus: LocalPrometheus) -> None:
    expected = {rule.get("alert") or rule["record"] for rule in load_rules()}
    deadline = time.monotonic() + 15
    while True:
        groups = prometheus.get("/api/v1/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        evaluated = [r for r in rules if not r.get("lastEvaluation", "").startswith("0001-")]
        if len(evaluated) == len(rules) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {rule["name"] for rule in rules} == expected
    assert len(evaluated) == len(rules), "some rules were never evaluated"
    broken = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] == "err"}
    assert not broken


def test_local_prometheus_scrapes_its_targets_as_the_post_service_job(
    prometheus: LocalPrometheus,
) -> None:
    assert JOB_NAME == "post-service"
    result = prometheus.wait_for_result('post_service_build_info{job="post-service"}', timeout=15)
    assert result[0]["metric"]["version"] == "test"
    up = prometheus.query('up{job="post-service"}')["data"]["result"]
    assert [sample["value"][1] for sample in up] == ["1"]
