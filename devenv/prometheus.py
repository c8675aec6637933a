"""A throwaway Prometheus server on a free loopback port, for `make run` and the tests.

``ensure_prometheus()`` returns the ``prometheus`` and ``promtool`` binaries, installing Debian's
``prometheus`` package (which ships both) with devenv.apt when either is missing. It is a couple of
``shutil.which`` calls when they are present.

The package's own service is never used: devenv.apt keeps maintainer scripts from starting it,
and even if one were running, ``LocalPrometheus`` would not notice: it uses its own config,
storage directory and port.

``LocalPrometheus`` writes a config (scrape job ``post-service``, the given rule files) in a
temporary directory, starts ``prometheus`` on a free 127.0.0.1 port and waits for ``/-/ready``.
``query()`` runs an instant query through the HTTP API. ``stop()`` (or leaving the ``with``
block) stops the server and removes the directory. Prometheus hands new targets to its scrape
loop at most every 5 s, so the first samples of a target appear about 5 s after the start:
use ``wait_for_result()`` rather than a fixed sleep.

Command line: ``python -m devenv.prometheus [HOST:PORT ...]`` starts one that scrapes the given
targets (default: the service's metrics port, 127.0.0.1:9464) and prints its URL.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devenv.apt import apt_install
from devenv.lifecycle import LocalServer, free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "prometheus"
JOB_NAME = "post-service"
READY_TIMEOUT_SECONDS = 30.0
HTTP_TIMEOUT_SECONDS = 10.0
START_ATTEMPTS = 3  # a free port can be taken by someone else before prometheus binds it


class PrometheusError(RuntimeError):
    """Prometheus could not be installed or started, or an API call failed."""


def ensure_prometheus() -> tuple[Path, Path]:
    """Return ``(prometheus, promtool)``, installing the Debian package first if needed."""
    found = _find_binaries()
    if found is None:
        apt_install(PACKAGE, why="prometheus")  # serialised across processes by devenv.apt
        found = _find_binaries()
    if found is None:
        raise PrometheusError(f"`prometheus`/`promtool` not found after installing `{PACKAGE}`")
    return found


def _find_binaries() -> tuple[Path, Path] | None:
    paths: list[Path] = []
    for name in ("prometheus", "promtool"):
        located = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/local/bin")
        if located is None:
            return None
        paths.append(Path(located))
    return paths[0], paths[1]


class LocalPrometheus(LocalServer):
    """A Prometheus server scraping ``scrape_targets`` (job ``post-service``) every
    ``scrape_interval`` and evaluating ``rule_files`` at the same interval.

    It is running once the constructor returns; use it as a context manager or call ``stop()``.
    """

    def __init__(
        self,
        scrape_targets: Sequence[str] = (),
        rule_files: Sequence[Path] = (),
        scrape_interval: str = "1s",
    ) -> None:
        self.prometheus, self.promtool = ensure_prometheus()
        self.scrape_targets = list(scrape_targets)
        self.rule_files = [Path(path).resolve() for path in rule_files]
        self.scrape_interval = scrape_interval
        self.dir = Path(tempfile.mkdtemp(prefix="post-service-prometheus-"))
        self.config_file = self.dir / "prometheus.yml"
        self.log_file = self.dir / "prometheus.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        try:
            self._write_config()
            self._start()
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": [
                {
                    "job_name": JOB_NAME,
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": self.scrape_targets}],
                }
            ],
        }
        # JSON is valid YAML, so no YAML library is needed.
        self.config_file.write_text(json.dumps(config, indent=2) + "\n")

    def _start(self) -> None:
        last_error = ""
        for _ in range(START_ATTEMPTS):
            self.port = free_port()
            command = [
                str(self.prometheus),
                f"--config.file={self.config_file}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1d",
                "--log.level=info",
            ]
            with self.log_file.open("ab") as log:
                self._process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    cwd=self.dir,
                )  # fmt: skip
            if self._wait_ready():
                return
            last_error = self._log_tail()
            self._terminate()
            if "address already in use" not in last_error:
                break
        raise PrometheusError(f"prometheus did not become ready:\n{last_error}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        return False

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def get(self, path: str, **params: str) -> dict[str, Any]:
        """GET an HTTP API path (e.g. ``/api/v1/rules``); the decoded JSON body if its
        ``status`` is ``success``, else ``PrometheusError`` with Prometheus' error message."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        request = f"{self.url}{path}{query}"
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:  # noqa: S310
                body: bytes = response.read()
        except urllib.error.HTTPError as exc:  # 400/422/503 carry a JSON error body
            body = exc.read()
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise PrometheusError(f"GET {path}: not JSON: {body[:500]!r}") from exc
        if not isinstance(payload, dict):
            raise PrometheusError(f"GET {path}: unexpected response {payload!r}")
        if payload.get("status") != "success":
            raise PrometheusError(
                f"GET {path} {params}: {payload.get('errorType')}: {payload.get('error')}"
            )
        return payload

    def query(self, expr: str, time_: float | None = None) -> dict[str, Any]:
        """Run an instant query; the whole API response (``status``, ``data``, ``warnings``).

        ``data["result"]`` holds the samples. Raises ``PrometheusError`` unless the status is
        ``success`` (a syntax error, an unknown function, a timeout...).
        """
        params = {"query": expr}
        if time_ is not None:
            params["time"] = f"{time_:.3f}"
        return self.get("/api/v1/query", **params)

    def wait_for_result(self, expr: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll ``expr`` until it returns a non-empty result (e.g. after the first scrapes)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)["data"]["result"]
            if isinstance(result, list) and result:
                return result
            if time.monotonic() >= deadline:
                raise PrometheusError(f"{expr!r} still returned nothing after {timeout}s")
            time.sleep(0.25)

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_process(process, timeout=10)

    def stop(self) -> None:
        """Stop the server and remove its directory (config, data, log)."""
        try:
            self._terminate()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def start(self) -> LocalPrometheus:
        return self  # running since the constructor returned

    def close(self) -> None:
        self.stop()


if __name__ == "__main__":
    targets = sys.argv[1:] or ["127.0.0.1:9464"]
    rules = [ROOT / "charts" / "post-service" / "files" / "prometheus-rules.yaml"]
    with LocalPrometheus(targets, [path for path in rules if path.exists()]) as prom:
        print(prom.url, flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            sys.exit(0)
