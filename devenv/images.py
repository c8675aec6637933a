"""Build the project's images on the local engine: the service, the dev User-service stub, and
a Debian base to build them on when the official Python image cannot be had.

``build_service_image()`` and ``build_stub_image()`` return tags like ``post-service:<hash>``,
where the hash covers the exact build context (see devenv.dockercontext), the build arguments
and the ids of the base images. When that tag already exists nothing is built, so an unchanged
image costs a fraction of a second. Each build also moves a stable alias (``post-service:local``,
``user-service-stub:local``) to its result.

The base: the Dockerfiles default to the official ``python:3.12-slim-trixie``. When it is
neither here nor pullable (no registry reachable), ``ensure_base_image()`` builds a stand-in
and says so: Debian trixie from Debian's own archive (``mmdebstrap --variant=minbase``, Python
3.13 with venv, ca-certificates, passwd), with a venv at ``/usr/local`` so that ``python`` and
``python -m pip`` have the official image's shape, and this machine's extra CA certificates
(``/usr/local/share/ca-certificates``) trusted so pip reaches the package index through a
TLS-inspecting proxy. ``debian_image()`` builds such a rootfs image with any packages, for
images of other components on the same footing. ``PYTHON_IMAGE`` in the environment overrides
the choice.

Builds run with ``--network host`` on the engine's default builder (the legacy one for
Debian's Docker 20.10; ``builder="buildkit"`` selects BuildKit), one at a time per checkout.

Command line: ``python -m devenv.images [base|service|stub ...]`` (default: service stub)
builds what is missing and prints ``name<TAB>tag`` lines; ``--builder buildkit`` as above.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from devenv.apt import apt_install
from devenv.docker import Docker, DockerError, ensure_docker
from devenv.dockercontext import base_images, build_context

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / ".cache" / "images"
SERVICE_DOCKERFILE = ROOT / "Dockerfile"
STUB_DOCKERFILE = ROOT / "deploy" / "dev" / "user-service-stub" / "Dockerfile"
SERVICE_REPOSITORY = "post-service"
STUB_REPOSITORY = "user-service-stub"
STANDIN_REPOSITORY = "post-service-base"
ALIAS = "local"
SUITE = "trixie"
STANDIN_PACKAGES = ("python3", "python3-venv", "ca-certificates", "passwd")
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")
BUILD_TIMEOUT_SECONDS = 1800
BUILDKIT_CACHE_BYTES = "2GB"  # enough for a warm rebuild of both images
# The environment every container from these bases gets (the official image sets the same
# PATH and LANG); changing anything here changes the stand-in's tag.
ROOTFS_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
)
RECIPE_VERSION = "2"
# Like the official slim images: no manuals, documentation (copyright files stay) or translations.
DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
)
# Legacy builder: "Step 3/17 : RUN ..."; BuildKit (--progress plain): "#7 [build 3/9] RUN ...".
_STEP = re.compile(rb"^(Step \d+/\d+ : |#\d+ \[)")


def official_base() -> str:
    """The Dockerfile's default ``PYTHON_IMAGE``."""
    (image,) = base_images(SERVICE_DOCKERFILE, {})
    return image


def ensure_base_image(docker: Docker | None = None) -> str:
    """The base to build on: ``$PYTHON_IMAGE``, else the official image if it is here or can be
    pulled, else the local stand-in (built once, then found by its tag)."""
    docker = docker or ensure_docker()
    override = os.environ.get("PYTHON_IMAGE")
    if override:
        return override
    official = official_base()
    if docker.image_id(official) or docker("pull", official, check=False).returncode == 0:
        return official
    _progress(f"{official} is not here and cannot be pulled: using the local stand-in base")
    return debian_image(STANDIN_PACKAGES, STANDIN_REPOSITORY, python_venv=True, docker=docker)


def debian_image(
    packages: Sequence[str],
    repository: str,
    *,
    python_venv: bool = False,
    docker: Docker | None = None,
) -> str:
    """A Debian trixie minbase image with ``packages`` and the machine's extra CA certificates
    (adding ``ca-certificates`` when there are any); with ``python_venv``, a venv at /usr/local
    and ``CMD ["python3"]``, else ``CMD ["bash"]``. Built once per recipe, found by its tag."""
    docker = docker or ensure_docker()
    certificates = sorted(LOCAL_CA_DIR.rglob("*.crt")) if LOCAL_CA_DIR.is_dir() else []
    if certificates:  # update-ca-certificates comes with the package
        packages = sorted({*packages, "ca-certificates"})
    recipe = hashlib.sha256(
        json.dumps(
            [RECIPE_VERSION, SUITE, sorted(packages), python_venv, ROOTFS_CHANGES, DPKG_OPTIONS]
        ).encode()
        + b"".join(path.read_bytes() for path in certificates)
    ).hexdigest()[:12]
    tag = f"{repository}:{SUITE}-{recipe}"
    with _build_lock():
        if docker.image_id(tag):
            return tag
        if shutil.which("mmdebstrap") is None:
            apt_install("mmdebstrap", why="images")
        with tempfile.TemporaryDirectory(prefix="rootfs-", dir=_cache_dir()) as work:
            rootfs = Path(work) / "rootfs.tar"
            hooks = _certificate_hooks(certificates, Path(work) / "ca")
            if python_venv:
                hooks.append('chroot "$1" python3 -m venv /usr/local')
            _mmdebstrap(packages, hooks, rootfs)
            changes = [*ROOTFS_CHANGES, 'CMD ["python3"]' if python_venv else 'CMD ["bash"]']
            change_args = [arg for change in changes for arg in ("--change", change)]
            docker("import", *change_args, str(rootfs), tag, timeout=600)
    _progress(f"built {tag}")
    return tag


def _certificate_hooks(certificates: list[Path], staging: Path) -> list[str]:
    if not certificates:
        return []
    staging.mkdir()
    for number, path in enumerate(certificates):
        shutil.copyfile(path, staging / f"{number:02d}-{path.name}")
    inside = "/usr/local/share/ca-certificates/host"
    return [
        f'mkdir -p "$1{inside}"',
        f"sync-in {shlex.quote(str(staging))} {inside}",
        'chroot "$1" update-ca-certificates --fresh >/dev/null',
    ]


def _mmdebstrap(packages: Sequence[str], hooks: list[str], target: Path) -> None:
    command = [
        "mmdebstrap", "--variant=minbase", f"--include={','.join(packages)}",
        *(f"--dpkgopt={option}" for option in DPKG_OPTIONS),
        *(f"--customize-hook={hook}" for hook in hooks), SUITE, str(target),
    ]  # fmt: skip
    if shutil.which("nice"):
        command = ["nice", "-n", "10", *command]
    log = target.with_suffix(".log")
    _progress(f"mmdebstrap {SUITE} with {', '.join(packages)} (about a minute; log: {log})")
    with log.open("wb") as output:
        result = subprocess.run(
            command, stdout=output, stderr=subprocess.STDOUT, check=False,
            timeout=BUILD_TIMEOUT_SECONDS,
        )  # fmt: skip
    if result.returncode != 0:
        raise DockerError(f"mmdebstrap failed ({result.returncode}):\n{_tail(log)}")


def build_service_image(
    docker: Docker | None = None, base: str | None = None, builder: str = "legacy"
) -> str:
    """The post-service image (root Dockerfile) on ``base`` (default: ensure_base_image())."""
    return _build_on_python_base(SERVICE_DOCKERFILE, SERVICE_REPOSITORY, docker, base, builder)


def build_stub_image(
    docker: Docker | None = None, base: str | None = None, builder: str = "legacy"
) -> str:
    """The dev User-service stub image (deploy/dev/user-service-stub/Dockerfile), on ``base``
    like the service."""
    return _build_on_python_base(STUB_DOCKERFILE, STUB_REPOSITORY, docker, base, builder)


def _build_on_python_base(
    dockerfile: Path, repository: str, docker: Docker | None, base: str | None, builder: str
) -> str:
    """build_image with the ``PYTHON_IMAGE`` build argument set to ``base`` (default:
    ensure_base_image())."""
    docker = docker or ensure_docker()
    base = base or ensure_base_image(docker)
    return build_image(
        dockerfile, repository, {"PYTHON_IMAGE": base}, docker=docker, builder=builder
    )


def build_image(
    dockerfile: Path,
    repository: str,
    build_args: Mapping[str, str] | None = None,
    *,
    context: Path = ROOT,
    docker: Docker | None = None,
    builder: str = "legacy",
) -> str:
    """Build ``dockerfile`` unless ``repository:<hash>`` exists; return that tag."""
    docker = docker or ensure_docker()
    build_args = dict(build_args or {})
    tar = build_context(dockerfile, context)
    inputs = hashlib.sha256(tar)
    inputs.update(json.dumps(sorted(build_args.items())).encode())
    for image in base_images(dockerfile, build_args):
        inputs.update(f"{image}={docker.image_id(image)}".encode())
    suffix = "" if builder == "legacy" else f"-{builder}"
    tag = f"{repository}:{inputs.hexdigest()[:12]}{suffix}"
    with _build_lock():
        if not docker.image_id(tag):
            _docker_build(docker, dockerfile.relative_to(context), tag, build_args, tar, builder)
            _remove_superseded(docker, repository, tag)
    docker("tag", tag, f"{repository}:{ALIAS}")
    return tag


def _remove_superseded(docker: Docker, repository: str, tag: str) -> None:
    """Remove the earlier content tags of ``repository`` built the same way, and their logs:
    each code change makes a new image, and the disk would fill up over many runs. An image a
    container still uses stays (``docker rmi`` refuses it)."""
    current = tag.split(":", 1)[1]
    same_kind = re.compile(rf"[0-9a-f]{{12}}{re.escape(current[12:])}")
    listed = docker("images", repository, "--format", "{{.Tag}}").stdout.split()
    for old in [t for t in listed if same_kind.fullmatch(t) and t != current]:
        if docker("rmi", f"{repository}:{old}", check=False).returncode == 0:
            (_cache_dir() / f"{repository}_{old}.log").unlink(missing_ok=True)


def _docker_build(
    docker: Docker,
    dockerfile: Path,
    tag: str,
    build_args: Mapping[str, str],
    tar: bytes,
    builder: str,
) -> None:
    log = _cache_dir() / f"{tag.replace(':', '_')}.log"
    command = [
        str(docker.binary), "build", "--network", "host", "--file", str(dockerfile),
        "--tag", tag, "--force-rm", "--cpu-shares", "256",
        *(arg for name, value in build_args.items() for arg in ("--build-arg", f"{name}={value}")),
    ]  # fmt: skip
    if builder == "buildkit":
        command += ["--progress", "plain"]
    command.append("-")
    env = {**os.environ, "DOCKER_BUILDKIT": "1" if builder == "buildkit" else "0"}
    _progress(f"building {tag} ({builder} builder; log: {log})")
    started = time.monotonic()
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env,
        )  # fmt: skip
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(tar)
        process.stdin.close()
        for line in process.stdout:
            output.write(line)
            if _STEP.match(line):  # one line per Dockerfile step, as progress
                print(f"  {line.decode(errors='replace').rstrip()[:100]}", file=sys.stderr)
        code = process.wait(BUILD_TIMEOUT_SECONDS)
    if code != 0:
        raise DockerError(f"docker build of {tag} failed ({code}):\n{_tail(log)}")
    if builder == "buildkit":  # its cache is separate from the images and grows with each build
        docker("builder", "prune", "--force", "--keep-storage", BUILDKIT_CACHE_BYTES, check=False)
    _progress(f"built {tag} in {time.monotonic() - started:.0f}s")


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """One build at a time per checkout (two runs would only build the same thing twice)."""
    with (_cache_dir() / "build.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _progress("waiting for another build in this checkout to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # the lock goes with the file


def _cache_dir() -> Path:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    return CACHE_DIR


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.exists() else ""


def _progress(message: str) -> None:
    print(f"images: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devenv.images", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "images", nargs="*", choices=["base", "service", "stub"], default=["service", "stub"]
    )
    parser.add_argument("--builder", choices=["legacy", "buildkit"], default="legacy")
    args = parser.parse_args(argv)
    docker = ensure_docker()
    base = ensure_base_image(docker)
    builds = {
        "base": lambda: base,
        "service": lambda: build_service_image(docker, base, args.builder),
        "stub": lambda: build_stub_image(docker, base, args.builder),
    }
    for name in args.images:
        print(f"{name}\t{builds[name]()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
