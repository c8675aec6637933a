"""Fixtures for the image / Helm chart / dev-loop checks.

The Go tools (helm, kind, grpcurl) are installed on first use by devenv.gotools (pinned
versions, `go install` into $(go env GOPATH)/bin, instant once built). A tool that cannot be
installed fails the tests that need it: nothing here is skipped.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devenv.gotools import GoToolError, ensure_go_tool

from .chartlib import CHART, VALUE_SETS, Doc, RenderFn, TemplateFn, run, values_file


def _tool(name: str) -> Path:
    try:
        return ensure_go_tool(name)
    except GoToolError as exc:  # a missing tool is a failure, never a skip
        pytest.fail(f"cannot install {name}: {exc}")


@pytest.fixture(scope="session")
def helm() -> Path:
    return _tool("helm")


@pytest.fixture(scope="session")
def kind() -> Path:
    return _tool("kind")


@pytest.fixture(scope="session")
def grpcurl() -> Path:
    return _tool("grpcurl")


@pytest.fixture(scope="session")
def values_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("values")
    for name, values in VALUE_SETS.items():
        (directory / f"{name}.yaml").write_text(yaml.safe_dump(values))
    return directory


@pytest.fixture(scope="session")
def helm_template(helm: Path) -> TemplateFn:
    """Run `helm template` (not checked): helm_template(*args, release=...)."""

    def template(
        *args: str | Path, release: str = "post-service"
    ) -> subprocess.CompletedProcess[str]:
        return run([helm, "template", release, CHART, "--namespace", "forum", *args], check=False)

    return template


@pytest.fixture(scope="session")
def render(helm_template: TemplateFn, values_dir: Path) -> RenderFn:
    """render(value_set, *extra_args, kube_version=None) -> parsed documents (cached)."""
    cache: dict[tuple[Any, ...], list[Doc]] = {}

    def _render(
        value_set: str, *extra: str, kube_version: str | None = None, release: str = "post-service"
    ) -> list[Doc]:
        key = (value_set, extra, kube_version, release)
        if key not in cache:
            args: list[str | Path] = ["-f", values_file(values_dir, value_set), *extra]
            if kube_version:
                args += ["--kube-version", kube_version]
            result = helm_template(*args, release=release)
            if result.returncode != 0:
                pytest.fail(f"helm template {value_set} {extra} failed:\n{result.stderr}")
            cache[key] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        return cache[key]

    return _render
