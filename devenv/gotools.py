"""Install pinned Go command-line tools (helm, grpcurl, ghz, kind) with ``go install``.

``ensure_go_tool("helm")`` returns the path of ``$(go env GOPATH)/bin/helm``, building it from
the Go module proxy only when that binary is missing or was built from another version or with
other linker flags. The check reads what the Go toolchain embedded in the binary
(``go version -m``: module version and ``-ldflags``), so it is instant and never rebuilds a
binary that is already right.

Builds are slow on a small machine, so they run one at a time (an exclusive lock file next to
the binaries, shared by every process and checkout that installs there) and under ``nice``.

Skaffold is not here: the Go module proxy does not serve ``github.com/GoogleContainerTools/
skaffold/v2`` (it answers 403), so ``skaffold.yaml`` is validated structurally by
tests/chart/test_devloop.py instead.

Command line: ``python -m devenv.gotools [NAME ...]`` installs the named tools (default: all)
and prints their paths.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

LOCK_NAME = ".gotools.lock"
BUILD_TIMEOUT_SECONDS = 1800


@dataclass(frozen=True)
class GoTool:
    """One pinned tool: the package to ``go install`` and the module whose version it carries."""

    name: str
    package: str
    module: str
    version: str
    ldflags: str = ""

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"


# Helm's release builds stamp its version and the Kubernetes version its client libraries
# target (client-go v0.37 for Helm 3.22). Without the latter, `helm template` would assume
# Kubernetes 1.20 and refuse charts with a newer kubeVersion constraint.
_HELM_K8S_MINOR = "37"
_HELM_LDFLAGS = " ".join(
    [
        "-s -w",
        "-X helm.sh/helm/v3/internal/version.version=v3.22.0",
        "-X helm.sh/helm/v3/internal/version.gitTreeState=clean",
        "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1",
        f"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor={_HELM_K8S_MINOR}",
        "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1",
        f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={_HELM_K8S_MINOR}",
    ]
)


TOOLS: dict[str, GoTool] = {
    tool.name: tool
    for tool in (
        GoTool("helm", "helm.sh/helm/v3/cmd/helm", "helm.sh/helm/v3", "v3.22.0", _HELM_LDFLAGS),
        GoTool(
            "grpcurl",
            "github.com/fullstorydev/grpcurl/cmd/grpcurl",
            "github.com/fullstorydev/grpcurl",
            "v1.9.4",
        ),
        GoTool("ghz", "github.com/bojand/ghz/cmd/ghz", "github.com/bojand/ghz", "v0.121.0"),
        GoTool("kind", "sigs.k8s.io/kind", "sigs.k8s.io/kind", "v0.33.0"),
    )
}


class GoToolError(RuntimeError):
    """A tool could not be installed (no Go toolchain, build failure, unknown name)."""


def _go() -> str:
    go = shutil.which("go")
    if go is None and Path("/usr/local/go/bin/go").exists():
        go = "/usr/local/go/bin/go"
    if go is None:
        raise GoToolError(
            "the Go toolchain (`go`) is not on PATH; install Go to build the dev tools"
        )
    return go


def gobin() -> Path:
    """``$GOBIN`` if set, else ``$(go env GOPATH)/bin`` (first GOPATH entry)."""
    go = _go()
    out = subprocess.run(
        [go, "env", "GOBIN", "GOPATH"], check=True, capture_output=True, text=True, timeout=60
    ).stdout.splitlines()
    gobin_env = out[0].strip() if out else ""
    if gobin_env:
        return Path(gobin_env)
    gopath = out[1].strip().split(os.pathsep)[0] if len(out) > 1 else ""
    if not gopath:
        raise GoToolError("`go env GOPATH` is empty")
    return Path(gopath) / "bin"


def build_info(binary: Path) -> dict[str, str]:
    """What ``go version -m`` says about ``binary``: ``mod:<module>`` -> version, ``-ldflags``.

    Empty when the file is missing or is not a Go binary.
    """
    if not binary.is_file():
        return {}
    result = subprocess.run(
        [_go(), "version", "-m", str(binary)], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        return {}
    info: dict[str, str] = {}
    for line in result.stdout.splitlines():
        fields = line.strip().split("\t")
        if len(fields) >= 3 and fields[0] == "mod":
            info[f"mod:{fields[1]}"] = fields[2]
        elif len(fields) >= 2 and fields[0] == "build" and fields[1].startswith("-ldflags="):
            info["-ldflags"] = fields[1].removeprefix("-ldflags=").strip('"')
    return info


def installed_version(binary: Path, module: str) -> str | None:
    """The version of ``module`` that ``binary`` was built from, or None if unknown/absent."""
    return build_info(binary).get(f"mod:{module}")


def _is_current(tool: GoTool, binary: Path) -> bool:
    info = build_info(binary)
    return (
        info.get(f"mod:{tool.module}") == tool.version and info.get("-ldflags", "") == tool.ldflags
    )


def ensure_go_tool(name: str) -> Path:
    """Return the path of the pinned tool ``name``, ``go install``-ing it first if needed."""
    tool = TOOLS.get(name)
    if tool is None:
        raise GoToolError(f"unknown Go tool {name!r}; known: {', '.join(sorted(TOOLS))}")
    binary = gobin() / name
    if _is_current(tool, binary):
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    with (binary.parent / LOCK_NAME).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one go build at a time, across processes
        try:
            # Another process may have built it while we waited for the lock.
            if _is_current(tool, binary):
                return binary
            _install(tool, binary.parent)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if not _is_current(tool, binary):
        found = build_info(binary)
        raise GoToolError(f"`go install {tool.spec}` left {binary} as {found!r}")
    return binary


def _install(tool: GoTool, bindir: Path) -> None:
    env = dict(os.environ)
    env["GOBIN"] = str(bindir)
    env.setdefault("CGO_ENABLED", "0")
    # No -trimpath: with it the toolchain leaves -ldflags out of the build info, and the
    # ldflags are part of what _is_current() compares.
    command = [_go(), "install"]
    if tool.ldflags:
        command.append(f"-ldflags={tool.ldflags}")
    command.append(tool.spec)
    if shutil.which("nice"):
        command = ["nice", "-n", "10", *command]
    print(f"gotools: building {tool.spec} (one-off; cached in {bindir})", file=sys.stderr)
    try:
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired as exc:
        raise GoToolError(f"`go install {tool.spec}` timed out after {exc.timeout}s") from exc
    if result.returncode != 0:
        raise GoToolError(
            f"`go install {tool.spec}` failed ({result.returncode}):\n{result.stderr[-4000:]}"
        )


def main(argv: list[str]) -> int:
    names = argv or sorted(TOOLS)
    for name in names:
        print(f"{name}\t{ensure_go_tool(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
