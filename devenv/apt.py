"""Install Debian packages with apt-get, for the devenv modules that need a system tool.

``apt_install("docker.io", "mmdebstrap", why="docker")`` installs the packages (with ``sudo -n``
when not root), refreshing the package lists once if the first attempt fails (usually stale or
missing lists). One install runs at a time across this checkout's processes (a lock file under
``.cache/``), and while it runs a ``policy-rc.d`` that denies every service start is put in
place when the machine has none, so maintainer scripts do not start the packages' own daemons:
the devenv starts what it needs itself, on its own terms. Callers check first whether the tool
is already there; this module does not.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK_FILE = ROOT / ".cache" / "apt-install.lock"
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
APT_TIMEOUT_SECONDS = 900


class AptError(RuntimeError):
    """The packages could not be installed."""


# Set by the test suite: tests find their tools, `python -m devenv.setup` installs them.
NO_INSTALL_VARIABLE = "DEVENV_NO_INSTALL"


def apt_install(*packages: str, why: str) -> None:
    """Install ``packages`` (``why`` names the caller in the progress line)."""
    if os.environ.get(NO_INSTALL_VARIABLE) == "1":
        raise AptError(
            f"{why}: Debian package(s) {' '.join(packages)} missing; the environment set-up "
            "installs them before the tests run: python -m devenv.setup (make test does)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    sudo: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise AptError(f"installing {' '.join(packages)} needs root: apt-get install them")
        sudo = ["sudo", "-n", "--preserve-env=DEBIAN_FRONTEND"]
    options = ["-q", "-o", "DPkg::Lock::Timeout=600"]
    install = [*sudo, "apt-get", "install", "-y", *options, "--no-install-recommends", *packages]
    update = [*sudo, "apt-get", "update", *options]
    print(f"{why}: installing Debian package(s) {' '.join(packages)}", file=sys.stderr, flush=True)
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with LOCK_FILE.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        with _service_starts_denied():
            _install(install, update, env, packages)


def _install(
    install: list[str], update: list[str], env: dict[str, str], packages: tuple[str, ...]
) -> None:
    if _run(install, env).returncode == 0:
        return
    refreshed = _run(update, env)
    if refreshed.returncode != 0:
        raise AptError(f"`apt-get update` failed:\n{refreshed.stderr[-4000:]}")
    second = _run(install, env)
    if second.returncode != 0:
        raise AptError(f"`apt-get install {' '.join(packages)}` failed:\n{second.stderr[-4000:]}")


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command, env=env, capture_output=True, text=True, check=False,
            timeout=APT_TIMEOUT_SECONDS,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise AptError(f"`{' '.join(command)}` timed out after {exc.timeout}s") from exc


@contextlib.contextmanager
def _service_starts_denied() -> Iterator[None]:
    """invoke-rc.d and deb-systemd-invoke both honour ``policy-rc.d`` (101 means "denied")."""
    created = False
    if os.geteuid() == 0 and not POLICY_RC_D.exists():
        POLICY_RC_D.write_text("#!/bin/sh\n# temporary, from devenv/apt.py\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
        created = True
    try:
        yield
    finally:
        if created:
            POLICY_RC_D.unlink(missing_ok=True)
