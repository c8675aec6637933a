"""The images the cluster runs, built on the local Docker engine and imported into the node.

The service and the User-service stub come from devenv.images (the same builds as
``make image``); PostgreSQL and Kafka from deploy/dev/images/ on Debian bases that
``devenv.images.debian_image`` makes with mmdebstrap. Every tag is a hash of its inputs, so an
unchanged image is neither rebuilt nor re-exported: ``docker save`` archives are kept in
``.cache/cluster-images/`` by tag. The client pods of the tests use the service's own image.

Command line: ``python -m devenv.cluster.workloads`` builds the images (and stages the Kafka
build context in deploy/dev/images/kafka/libs/ for skaffold) and prints ``name<TAB>tag``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from devenv.docker import Docker, ensure_docker
from devenv.images import (
    build_image,
    build_service_image,
    build_stub_image,
    debian_image,
    ensure_base_image,
)
from devenv.kafka_jars import ensure_kafka_jars

if TYPE_CHECKING:
    from devenv.cluster.cluster import LocalCluster

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "deploy" / "dev" / "images"
ARCHIVES = ROOT / ".cache" / "cluster-images"
# The names the manifests use (deploy/dev/*.yaml, the chart's image.repository).
SERVICE = "post-service"
STUB = "user-service-stub"
POSTGRES = "post-service-dev-postgres"
KAFKA = "post-service-dev-kafka"


def log(message: str) -> None:
    print(f"cluster images: {message}", file=sys.stderr, flush=True)


def build_images(docker: Docker | None = None) -> dict[str, str]:
    """Build (or find) every image; return manifest image name -> tag."""
    docker = docker or ensure_docker()
    base = ensure_base_image(docker)
    # ca-certificates: debian_image trusts the machine's extra CAs, which needs the package.
    postgres_base = debian_image(
        ["postgresql", "ca-certificates"], f"{POSTGRES}-base", docker=docker
    )
    # The JRE is installed by the Kafka Dockerfile (its postinst needs a directory the base drops).
    debian = debian_image(["ca-certificates"], "post-service-dev-debian", docker=docker)
    with tempfile.TemporaryDirectory(prefix="kafka-image-") as staging:
        # Outside the repository: the jars are git-ignored, and the context builder skips those.
        kafka_context = stage_kafka_context(Path(staging))
        kafka = build_image(
            kafka_context / "Dockerfile",
            KAFKA,
            {"BASE": debian},
            context=kafka_context,
            docker=docker,
        )
    return {
        SERVICE: build_service_image(docker, base),
        STUB: build_stub_image(docker, base),
        POSTGRES: build_image(
            IMAGES / "postgres" / "Dockerfile",
            POSTGRES,
            {"BASE": postgres_base},
            context=IMAGES / "postgres",
            docker=docker,
        ),
        KAFKA: kafka,
    }


def stage_kafka_context(target: Path) -> Path:
    """deploy/dev/images/kafka/ plus ``libs/`` (the broker's jars, hard-linked when possible)."""
    source = IMAGES / "kafka"
    target.mkdir(parents=True, exist_ok=True)
    if target.resolve() != source.resolve():
        for name in ("Dockerfile", "kafka-start.sh"):
            shutil.copy2(source / name, target / name)
    libs = target / "libs"
    if libs.exists():
        shutil.rmtree(libs)
    libs.mkdir()
    for jar in sorted(ensure_kafka_jars().glob("*.jar")):
        try:
            os.link(jar, libs / jar.name)
        except OSError:
            shutil.copy2(jar, libs / jar.name)
    return target


def build_and_import_images(cluster: LocalCluster, docker: Docker | None = None) -> dict[str, str]:
    """Build the images and import each into the cluster's node; return name -> tag."""
    docker = docker or ensure_docker()
    images = build_images(docker)
    ARCHIVES.mkdir(parents=True, exist_ok=True)
    for tag in images.values():
        archive = ARCHIVES / (tag.replace("/", "_").replace(":", "_") + ".tar")
        if not archive.exists():
            partial = archive.with_suffix(".partial")
            docker("save", "--output", str(partial), tag, timeout=600)
            partial.replace(archive)
        cluster.import_image(archive)
        log(f"imported {tag}")
    _prune_archives(set(images.values()))
    return images


def _prune_archives(keep: set[str]) -> None:
    wanted = {t.replace("/", "_").replace(":", "_") + ".tar" for t in keep}
    for archive in ARCHIVES.glob("*.tar"):
        if archive.name not in wanted:
            archive.unlink()


def main() -> int:
    images = build_images()
    stage_kafka_context(IMAGES / "kafka")
    for name, tag in images.items():
        print(f"{name}\t{tag}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
