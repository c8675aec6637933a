"""`make run` (``python -m devenv.run``) as a newcomer runs it: its own Kafka, provisioned with the
service's topics before the service starts, and a normal start-up that logs no ERROR line.

The database is a fresh one on the session's PostgreSQL (DB_URL set, so no second cluster);
Kafka and the stand-in User-service are the ones `make run` starts itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from devenv.kafka_admin import service_topics
from devenv.lifecycle import free_port
from devenv.post_service_process import ROOT, service_env
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from post_service.config import KafkaSettings
from tests.support.kafka_client import read_topic, wait_for

pytestmark = pytest.mark.e2e

START_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 90.0


@dataclass
class DevRun:
    process: subprocess.Popen[bytes]
    log: Path
    grpc_port: int

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_line(self, pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if match := re.search(pattern, self.output(), re.MULTILINE):
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no line matching {pattern!r}:\n{self.output()[-4000:]}")


def children_of(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (the broker JVM runs in a session of its own)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


@pytest.fixture
def dev_run(fresh_database: str, tmp_path: Path) -> Iterator[DevRun]:
    grpc_port = free_port()
    env = service_env(fresh_database, GRPC_PORT=str(grpc_port))
    del env["USER_SERVICE_ADDR"]  # `make run` starts the stand-in, and Kafka (no KAFKA_* set)
    log = tmp_path / "make-run.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "devenv.run"], env=env, cwd=ROOT, stdout=output,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield DevRun(process, log, grpc_port)
    finally:
        if process.poll() is None:  # the test failed before Ctrl-C: stop what it started
            for child in children_of(process.pid):
                os.kill(child, signal.SIGKILL)
            process.kill()
            process.wait()


async def topics_and_group_state(bootstrap: str, group: str) -> tuple[set[str], str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
        (description,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    (group_description,) = description.to_object()["groups"]
    return topics, str(group_description["state"])


def error_lines(output: str) -> list[str]:
    """Log lines at ERROR or above (the service logs JSON), and tracebacks of any process."""
    found = []
    for line in output.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if "Traceback" in line or re.search(r"\b(ERROR|CRITICAL)\b", line):
                found.append(line)
            continue
        if isinstance(entry, dict) and entry.get("level") in {"ERROR", "CRITICAL"}:
            found.append(line)
    return found


def test_make_run_provisions_the_topics_and_starts_without_error_lines(dev_run: DevRun) -> None:
    settings = KafkaSettings(bootstrap_servers="")
    bootstrap = dev_run.wait_for_line(r"^local Kafka: (\S+)$")[1]
    dev_run.wait_for_line(r"^post-service: gRPC on port")
    with grpc.insecure_channel(f"127.0.0.1:{dev_run.grpc_port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT_SECONDS)
        created = PostStub(channel).CreatePost(
            pb.PostCreateRequest(auth_id=5, title="Hello", body="First post"),
            timeout=10,
            wait_for_ready=True,
        )
    assert created.username == "user-5"  # the stand-in User-service that `make run` started

    async def settled() -> set[str] | None:
        # The relay published the post's event and the consumers joined their group.
        events = await read_topic(bootstrap, settings.post_events_topic)
        published = any(record.json()["post"]["id"] == created.post_id for record in events)
        topics, state = await topics_and_group_state(bootstrap, settings.consumer_group)
        return topics if published and state == "Stable" else None

    topics = asyncio.run(wait_for(settled, timeout=START_TIMEOUT_SECONDS))
    assert set(service_topics(settings)) <= topics

    dev_run.process.send_signal(signal.SIGINT)  # Ctrl-C
    assert dev_run.process.wait(STOP_TIMEOUT_SECONDS) == 0, dev_run.output()[-4000:]
    assert error_lines(dev_run.output()) == []
