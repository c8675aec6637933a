"""The cluster's Go binaries, built from the Go module proxy once per version and cached.

Kubernetes cannot be ``go install``-ed: its go.mod replaces the ``k8s.io/*`` staging modules
with local paths. A wrapper module that requires ``k8s.io/kubernetes`` and points each staging
module at its published ``v0.<minor>.<patch>`` twin builds it. etcd's server module is
``package main`` with its sibling modules replaced by paths, so it gets a wrapper too. The
others (CoreDNS, metrics-server, crictl, kube-router) are plain ``go install``.

Built binaries live in a machine-wide cache, keyed by name and version
(``~/.cache/post-service/bin/<name>-<version>/``, or under ``$POST_SERVICE_CLUSTER_CACHE``),
so every clone on the machine, CI's fresh one included, reuses them: a cold build takes about
13 minutes on 2 cores, a cached one nothing. Builds run one at a time (a lock file) under
``nice``, and a binary appears under its final name only once complete.
"""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

BUILD_TIMEOUT_SECONDS = 2400


class BuildError(RuntimeError):
    """A binary could not be built."""


@dataclass(frozen=True)
class GoBuild:
    """Binaries built from one module version.

    ``packages`` maps binary name -> Go package. With ``wrapper_requires`` set, the packages are
    built inside a wrapper module requiring those modules (``replaces`` added verbatim);
    otherwise each package is ``go install``-ed at ``version``.
    """

    name: str
    version: str
    packages: dict[str, str]
    wrapper_requires: tuple[str, ...] = ()
    replaces: tuple[str, ...] = field(default=())
    ldflags: str = ""

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}"


KUBERNETES_VERSION = "v1.37.2"
_STAGING_VERSION = "v0.37.2"
ETCD_VERSION = "v3.6.16"


def _kubernetes_ldflags() -> str:
    # What Kubernetes' release builds stamp: without it every component reports v0.0.0, and
    # Helm then refuses charts with a kubeVersion constraint.
    minor = KUBERNETES_VERSION.split(".")[1]
    stamps = {
        "gitVersion": KUBERNETES_VERSION,
        "gitMajor": "1",
        "gitMinor": minor,
        "gitTreeState": "clean",
    }
    return " ".join(
        ["-s", "-w"]
        + [
            f"-X {package}.{name}={value}"
            for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
            for name, value in stamps.items()
        ]
    )


def _kubernetes_build() -> GoBuild:
    commands = (
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kube-proxy",
        "kubectl",
    )
    return GoBuild(
        name="kubernetes",
        version=KUBERNETES_VERSION,
        packages={c: f"k8s.io/kubernetes/cmd/{c}" for c in commands},
        wrapper_requires=(f"k8s.io/kubernetes {KUBERNETES_VERSION}",),
        # Filled from k8s.io/kubernetes's own go.mod when the wrapper is written.
        replaces=("staging:" + _STAGING_VERSION,),
        ldflags=_kubernetes_ldflags(),
    )


def _etcd_build() -> GoBuild:
    siblings = ("api/v3", "client/pkg/v3", "client/v3", "pkg/v3")
    return GoBuild(
        name="etcd",
        version=ETCD_VERSION,
        packages={"etcd": "go.etcd.io/etcd/server/v3"},
        wrapper_requires=(f"go.etcd.io/etcd/server/v3 {ETCD_VERSION}",),
        replaces=tuple(
            f"go.etcd.io/etcd/{s} => go.etcd.io/etcd/{s} {ETCD_VERSION}" for s in siblings
        ),
    )


BUILDS: dict[str, GoBuild] = {
    b.name: b
    for b in (
        _kubernetes_build(),
        _etcd_build(),
        GoBuild("coredns", "v1.15.0", {"coredns": "github.com/coredns/coredns"}),
        GoBuild(
            "metrics-server",
            "v0.9.0",
            {"metrics-server": "sigs.k8s.io/metrics-server/cmd/metrics-server"},
        ),
        GoBuild("crictl", "v1.37.0", {"crictl": "sigs.k8s.io/cri-tools/cmd/crictl"}),
        # Its network policy controller only: the bridge CNI plugin enforces no NetworkPolicy.
        GoBuild(
            "kube-router",
            "v2.1.0",
            {"kube-router": "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"},
        ),
    )
}


def go() -> str:
    """The Go toolchain: on PATH, or where the official installer puts it."""
    found = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    if found is None:
        raise BuildError("the Go toolchain (`go`) is needed to build the cluster's binaries")
    return found


def cache_root() -> Path:
    configured = os.environ.get("POST_SERVICE_CLUSTER_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "post-service"


def bin_dir(build: GoBuild) -> Path:
    return cache_root() / "bin" / build.key


def _missing(build: GoBuild) -> list[str]:
    return [n for n in build.packages if not _is_current(build, bin_dir(build) / n)]


def _is_current(build: GoBuild, binary: Path) -> bool:
    """Present, and linked with the flags the build asks for (``go version -m`` shows them)."""
    if not os.access(binary, os.X_OK):
        return False
    if not build.ldflags:
        return True
    info = subprocess.run(
        [go(), "version", "-m", str(binary)], capture_output=True, text=True, timeout=60
    ).stdout
    return f"-ldflags={shlex.quote(build.ldflags)}" in info or f'-ldflags="{build.ldflags}"' in info


def ensure_binaries(names: tuple[str, ...] = tuple(BUILDS)) -> dict[str, Path]:
    """Build what is missing of ``names`` (keys of BUILDS); return binary name -> path."""
    paths: dict[str, Path] = {}
    for name in names:
        build = BUILDS[name]
        if _missing(build):
            _locked_build(build)
        paths.update({n: bin_dir(build) / n for n in build.packages})
    return paths


def _locked_build(build: GoBuild) -> None:
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".build.lock").open("a") as lock:
        if not _try_lock(lock):
            print(f"cluster: waiting for another build ({root / '.build.lock'})", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            for binary in _missing(build):  # another process may have built some meanwhile
                _build_one(build, binary)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _try_lock(lock: IO[str]) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _build_one(build: GoBuild, binary: str) -> None:
    target = bin_dir(build) / binary
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(binary + ".partial")
    env = {**os.environ, "CGO_ENABLED": "0"}
    package = build.packages[binary]
    if build.wrapper_requires:
        workdir = _write_wrapper(build)
        command = [go(), "build", f"-ldflags={build.ldflags}", "-o", str(partial), package]
    else:
        workdir = target.parent
        env["GOBIN"] = str(workdir / ".gobin")
        command = [go(), "install", f"{package}@{build.version}"]
    if shutil.which("nice"):
        command = ["nice", "-n", "10", *command]
    print(
        f"cluster: building {binary} {build.version} (once; cached in {target.parent})",
        file=sys.stderr,
        flush=True,
    )
    started = time.monotonic()
    _run(command, workdir, env)
    if not build.wrapper_requires:
        built = workdir / ".gobin" / package.rsplit("/", 1)[-1]
        built.replace(partial)
    partial.replace(target)
    print(f"cluster: built {binary} in {time.monotonic() - started:.0f}s", file=sys.stderr)


def _write_wrapper(build: GoBuild) -> Path:
    workdir = cache_root() / "build" / build.key
    gomod = workdir / "go.mod"
    if gomod.exists() and (workdir / "go.sum").exists():
        return workdir
    workdir.mkdir(parents=True, exist_ok=True)
    replaces = list(build.replaces)
    if replaces and replaces[0].startswith("staging:"):
        replaces = _staging_replaces(build, replaces[0].removeprefix("staging:"))
    imports = "\n".join(f'\t_ "{p}"' for p in build.packages.values())
    (workdir / "tools.go").write_text(
        f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"
    )
    requires = "\n".join(f"\t{r}" for r in build.wrapper_requires)
    replace_block = "\n".join(f"\t{r}" for r in replaces)
    gomod.write_text(
        f"module postservice.local/{build.name}build\n\ngo 1.25\n\n"
        f"require (\n{requires}\n)\n\nreplace (\n{replace_block}\n)\n"
    )
    _run([go(), "mod", "tidy"], workdir, dict(os.environ))
    return workdir


def _staging_replaces(build: GoBuild, staging_version: str) -> list[str]:
    """``k8s.io/<m> => k8s.io/<m> <staging_version>`` for each staging module Kubernetes lists."""
    module = build.wrapper_requires[0].replace(" ", "@")
    out = subprocess.run(
        [go(), "mod", "download", "-json", module],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    gomod_path = re.search(r'"GoMod":\s*"([^"]+)"', out)
    if gomod_path is None:
        raise BuildError(f"`go mod download {module}` did not name its go.mod")
    staged = re.findall(
        r"^\s*(k8s\.io/\S+) => \./staging/", Path(gomod_path.group(1)).read_text(), re.MULTILINE
    )
    return [f"{m} => {m} {staging_version}" for m in staged]


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> None:
    try:
        result = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"`{' '.join(command)}` timed out after {exc.timeout}s") from exc
    if result.returncode != 0:
        raise BuildError(f"`{' '.join(command)}` failed:\n{result.stderr[-4000:]}")
