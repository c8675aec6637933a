"""The local Kafka broker's jars (fetched by Maven) and the JVM that runs them.

The broker is Kafka 4.x, started from the jars that ``devenv/kafka/pom.xml`` names.
``ensure_kafka_jars()`` copies them from Maven Central into ``.cache/kafka/<version>/libs`` once
(a stamp file holding the pom's hash makes later calls skip Maven entirely).

JVM start-up dominates the start time, so the first broker that stops cleanly leaves a class-data
sharing archive (``cds_archive()``: ``.cache/kafka/<version>/broker-<jdk>.jsa``) that later JVMs
map instead of loading and verifying the same classes again (about a second less per start on 2
cores). ``LocalKafka`` (devenv/kafka.py) writes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"
CACHE_DIR = ROOT / ".cache" / "kafka"
MAVEN_TIMEOUT_SECONDS = 900.0

# Quick start on a small shared machine: a bounded heap, the serial collector and only the C1
# compiler (the broker serves test traffic, not benchmarks).
JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:-UsePerfData",  # no /tmp/hsperfdata_<user> file: nothing written outside our temp dir
    "-Xshare:auto",
    "-Djava.awt.headless=true",
    "-Djava.net.preferIPv4Stack=true",
)


def kafka_version(pom: Path = POM) -> str:
    """The Kafka version that the pom pins (its ``kafka.version`` property)."""
    match = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", pom.read_text())
    if match is None:
        raise RuntimeError(f"{pom} has no <kafka.version> property")
    return match.group(1)


def ensure_kafka_jars(pom: Path = POM) -> Path:
    """The directory of the broker's jars, copied from Maven Central unless already cached.

    The copy is stamped with the pom's SHA-256, so a cached copy costs no Maven run, and a
    changed pom fetches again. An exclusive lock keeps concurrent callers from racing.
    """
    version_dir = CACHE_DIR / kafka_version(pom)
    libs = version_dir / "libs"
    stamp = version_dir / "libs.sha256"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()

    def cached() -> bool:
        return libs.is_dir() and stamp.is_file() and stamp.read_text().strip() == digest

    if cached():
        return libs
    version_dir.mkdir(parents=True, exist_ok=True)
    with (CACHE_DIR / "download.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cached():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError("`mvn` (Apache Maven) is needed to fetch the Kafka jars")
        staging = version_dir / "libs.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        command = [
            mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(pom),
            "dependency:copy-dependencies", "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]  # fmt: skip
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=MAVEN_TIMEOUT_SECONDS
        )
        if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            output = (result.stdout + result.stderr).strip()[-4000:]
            raise RuntimeError(f"fetching the Kafka jars failed ({result.returncode}):\n{output}")
        shutil.rmtree(libs, ignore_errors=True)
        for archive in version_dir.glob("broker-*.jsa"):  # made for the old jars: JVMs ignore it
            archive.unlink()
        staging.rename(libs)
        stamp.write_text(digest + "\n")
    return libs


def cds_archive(libs: Path, java: str) -> Path:
    """Where the class-data sharing archive for these jars and this JDK lives (or will)."""
    fingerprint = str(Path(java).resolve())
    runtime = Path(fingerprint).parent.parent / "lib" / "modules"  # changes with every JDK update
    if runtime.exists():
        fingerprint += f":{runtime.stat().st_size}:{runtime.stat().st_mtime_ns}"
    key = hashlib.sha256(fingerprint.encode()).hexdigest()[:12]
    return libs.parent / f"broker-{key}.jsa"


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and Path(java_home, "bin", "java").exists():
        return str(Path(java_home, "bin", "java"))
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("`java` (17 or newer) is needed to run the Kafka broker")
    return java
