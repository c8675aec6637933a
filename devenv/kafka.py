"""``LocalKafka``: a real single-node Apache Kafka broker on free loopback ports, for `make run`
and the tests; run as ``python -m devenv.kafka`` it is a command-line broker.

The broker is Kafka 4.x in KRaft mode, broker and controller in one JVM, started from the jars
that devenv/kafka_jars.py fetches, configured as devenv/kafka_config.py says. ``LocalKafka``
keeps everything in one temporary directory: the generated ``server.properties`` and log4j2
configuration, the data (``data/``) and the logs (``logs/``). ``stop()`` then ``start()`` brings
the broker back on the same ports with its data (fault tests stop Kafka and restart it);
``kill()`` is the abrupt version; ``close()`` stops it and removes the directory.

The first broker that stops cleanly leaves the class-data sharing archive that later JVMs map
(see devenv/kafka_jars.py). It is written to a private file and renamed into place, so a crash
never leaves a torn archive behind; ``DEVENV_KAFKA_CDS=0`` turns it off.

``provision()`` creates topics as the platform would (devenv/kafka_admin.py); three brokers that
replicate them are ``LocalKafkaCluster`` in devenv/kafka_cluster.py.

Command line: ``python -m devenv.kafka [--port N] [--partitions N]`` starts a broker, prints its
bootstrap address (``127.0.0.1:PORT``) on stdout and runs until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from aiokafka.errors import KafkaError

from devenv.kafka_admin import KafkaStartError, brokers_in_metadata, create_topics, run_blocking
from devenv.kafka_config import LOG4J2_PROPERTIES, random_cluster_id, server_properties
from devenv.kafka_jars import (
    JVM_OPTIONS,
    cds_archive,
    ensure_kafka_jars,
    java_executable,
    kafka_version,
)
from devenv.lifecycle import LocalServer, free_port, kill_process, removed_on_failure, stop_process

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0
NODE_ID = 1


class LocalKafka(LocalServer):
    """One KRaft broker+controller JVM on 127.0.0.1, with its files in a temporary directory.

    Alone by default; ``LocalKafkaCluster`` makes several, each with its ``node_id``, sharing
    one ``cluster_id`` and a controller quorum given in ``extra_properties``.
    """

    def __init__(
        self,
        port: int | None = None,
        controller_port: int | None = None,
        num_partitions: int = 3,
        extra_properties: dict[str, str] | None = None,
        *,
        node_id: int = NODE_ID,
        cluster_id: str | None = None,
    ) -> None:
        self.node_id = node_id
        self.libs = ensure_kafka_jars()
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        while self.controller_port == self.port:
            self.controller_port = free_port()
        self.num_partitions = num_partitions
        self.cluster_id = cluster_id or random_cluster_id()
        self.java = java_executable()
        self._cds = os.environ.get("DEVENV_KAFKA_CDS", "1") != "0"
        self._cds_archive = cds_archive(self.libs, self.java)
        self._cds_dump: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes]], LocalKafka] | None = None
        self._has_started = False
        # Everything that can fail without a directory ran above; from here on, a failure
        # removes the directory again.
        self.dir = Path(tempfile.mkdtemp(prefix="post-service-kafka-"))
        self.data = self.dir / "data"
        self.logs = self.dir / "logs"
        self.config = self.dir / "server.properties"
        self.log4j_config = self.dir / "log4j2.properties"
        with removed_on_failure(self.dir):
            self.logs.mkdir()
            self.log4j_config.write_text(LOG4J2_PROPERTIES)
            properties = server_properties(
                node_id, self.port, self.controller_port, self.data, num_partitions
            ) | (extra_properties or {})
            self.config.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker JVM's process id while it runs, else None."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def server_log(self) -> Path:
        return self.logs / "server.log"

    def _java(self, main_class: str, *args: str, dump_cds: bool = False) -> list[str]:
        cds: list[str] = []
        if self._cds and self._cds_archive.exists():
            cds = [f"-XX:SharedArchiveFile={self._cds_archive}", "-Xlog:cds=off,cds+dynamic=off"]
        elif self._cds and dump_cds:
            private = f"{self._cds_archive.name}.{os.getpid()}-{id(self)}.tmp"
            self._cds_dump = self._cds_archive.with_name(private)
            cds = [f"-XX:ArchiveClassesAtExit={self._cds_dump}", "-Xlog:cds=off,cds+dynamic=off"]
        return [
            self.java,
            *JVM_OPTIONS,
            *cds,
            f"-Dkafka.logs.dir={self.logs}",
            f"-Dlog4j2.configurationFile={self.log4j_config}",
            "-cp",
            f"{self.libs}/*",
            main_class,
            *args,
        ]

    def _env(self) -> dict[str, str]:
        return {**os.environ, "LOG_DIR": str(self.logs)}

    def _format_storage(self) -> None:
        """Format the data directory once (KRaft needs meta.properties before the first start)."""
        if (self.data / "meta.properties").exists():
            return
        command = self._java(
            "kafka.tools.StorageTool", "format", "--ignore-formatted",
            "--cluster-id", self.cluster_id, "--config", str(self.config),
        )  # fmt: skip
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, cwd=self.dir, env=self._env(),
            timeout=START_TIMEOUT_SECONDS,
        )  # fmt: skip
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()[-3000:]
            raise KafkaStartError(f"formatting Kafka storage failed:\n{output}")

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> LocalKafka:
        """Start the broker (again: same ports, same data) and wait until clients can use it.

        If the first start fails, the temporary directory goes too (the error carries the tail
        of the logs): no caller holds a started broker to close, and a ``with`` block never
        reaches ``__exit__``. A failed restart keeps the data for the owner's ``close()``.
        """
        if self.running:
            return self
        try:
            self._format_storage()
            self._launch()
            self._wait_ready(timeout)
        except BaseException:
            self.kill()
            if not self._has_started:
                shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self._has_started = True
        return self

    def _launch(self) -> None:
        with (self.logs / "stdout.log").open("ab") as output:
            self._process = subprocess.Popen(
                self._java("kafka.Kafka", str(self.config), dump_cds=True),
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                cwd=self.dir, env=self._env(), start_new_session=True,
            )  # fmt: skip
        self._finalizer = weakref.finalize(self, kill_process, self._process)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        problem = "no answer yet"
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise KafkaStartError(
                    f"Kafka exited with code {code} while starting\n{self.tail()}"
                )
            try:
                if run_blocking(brokers_in_metadata(self.bootstrap_servers)) > 0:
                    return
                problem = "metadata lists no broker yet"
            except (KafkaError, OSError) as error:
                problem = repr(error)
            time.sleep(0.2)
        raise KafkaStartError(
            f"Kafka did not become ready on {self.bootstrap_servers} within {timeout:g}s "
            f"({problem})\n{self.tail()}"
        )

    def provision(self, topics: Sequence[str], consumer_group: str | None = None) -> None:
        """Create ``topics`` (with the broker's partition count) as the platform would."""
        run_blocking(
            create_topics(self.bootstrap_servers, topics, self.num_partitions, consumer_group)
        )

    def tail(self, characters: int = 4000) -> str:
        """The ends of the broker's logs, for error messages."""
        parts = []
        for log in (self.logs / "stdout.log", self.server_log):
            if log.exists():
                text = log.read_text(errors="replace")[-characters:]
                parts.append(f"--- {log} ---\n{text}")
        return "\n".join(parts)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Shut the broker down cleanly (SIGTERM), or SIGKILL it after ``timeout`` seconds."""
        process = self._process
        if process is None:
            return
        if stop_process(process, timeout):
            self._publish_cds_archive()
        self._forget_process()

    def kill(self) -> None:
        """Kill the broker abruptly (SIGKILL), as a crash or a lost node would."""
        process = self._process
        if process is None:
            return
        kill_process(process)
        self._forget_process()

    def _publish_cds_archive(self) -> None:
        """Move the archive that a cleanly stopped JVM dumped into the shared cache."""
        dump = self._cds_dump
        if dump is not None and dump.exists() and dump.stat().st_size > 0:
            os.replace(dump, self._cds_archive)

    def _forget_process(self) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()
        if self._cds_dump is not None:
            self._cds_dump.unlink(missing_ok=True)
            self._cds_dump = None
        self._process = None
        self._finalizer = None

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devenv.kafka",
        description="Run a throwaway single-node Kafka broker on 127.0.0.1 until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=None, help="broker port (default: a free one)")
    parser.add_argument("--partitions", type=int, default=3, help="num.partitions (default 3)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in background
    started = time.monotonic()
    kafka = LocalKafka(port=args.port, num_partitions=args.partitions)
    try:
        kafka.start()
        print(kafka.bootstrap_servers, flush=True)
        print(
            f"Kafka {kafka_version()} ready in {time.monotonic() - started:.1f}s "
            f"(pid {kafka.pid}, logs in {kafka.logs}); Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )
        while kafka.running:
            time.sleep(1)
        print(f"Kafka exited unexpectedly\n{kafka.tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        kafka.close()


if __name__ == "__main__":
    sys.exit(main())
