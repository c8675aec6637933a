"""The local broker (devenv/kafka.py, ids from devenv/kafka_config.py) without a JVM: the cluster
ids it formats with, and what a failed start leaves.

A cluster id that begins with "-" is read by ``kafka-storage format --cluster-id`` as an option,
so the broker never starts (tests/integration/test_local_kafka_broker.py shows it on the real
tool); and a failed start used to leave its temporary directory behind.
"""

from __future__ import annotations

import base64
import random
import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv import kafka as local_kafka
from devenv.kafka import LocalKafka
from devenv.kafka_admin import KafkaStartError
from devenv.kafka_config import random_cluster_id

# Kafka's own generator draws again while the id contains "-", so its ids never do.
KAFKA_ID = re.compile(r"[A-Za-z0-9_]{22}")


def seeded_uuids(seed: int) -> Iterator[uuid.UUID]:
    rng = random.Random(seed)
    while True:
        yield uuid.UUID(int=rng.getrandbits(128), version=4)


def uuid_starting_with(first_byte: int) -> uuid.UUID:
    return uuid.UUID(bytes=bytes([first_byte]) + bytes(range(1, 16)))  # no "-" after the first


def encoded(drawn: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(drawn.bytes).decode().rstrip("=")


def test_no_cluster_id_begins_with_a_dash_and_all_are_22_char_base64url() -> None:
    uuids = seeded_uuids(11)
    ids = [random_cluster_id(lambda: next(uuids)) for _ in range(20_000)]
    # Without the redraw about one id in 64 would begin with "-" (some 300 of these).
    assert [i for i in ids if i.startswith("-")] == []
    assert all(KAFKA_ID.fullmatch(i) for i in ids), [i for i in ids if not KAFKA_ID.fullmatch(i)]
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_uuid_that_encodes_to_a_leading_dash_is_drawn_again() -> None:
    # The first base64 character is the top six bits of the first byte: 0xF8..0xFB give "-".
    dashed = [uuid_starting_with(byte) for byte in (0xF8, 0xFB)]
    usable = uuid_starting_with(0x10)
    assert all(encoded(u).startswith("-") for u in dashed)
    draws = iter([*dashed, usable])

    cluster_id = random_cluster_id(lambda: next(draws))

    assert cluster_id == encoded(usable)
    assert next(draws, None) is None  # exactly three draws


def test_like_kafkas_generator_it_skips_any_dash_and_the_reserved_ids() -> None:
    inner_dash = uuid.UUID(bytes=bytes([0x10, 0x0F, 0x80]) + bytes(13))  # "EA-A..."
    reserved = [uuid.UUID(int=0), uuid.UUID(int=1)]  # Uuid.ZERO_UUID, Uuid.ONE_UUID
    usable = uuid_starting_with(0x10)
    assert "-" in encoded(inner_dash)[1:]
    draws = iter([inner_dash, *reserved, usable])

    assert random_cluster_id(lambda: next(draws)) == encoded(usable)


def test_the_default_generator_gives_kafka_shaped_ids() -> None:
    ids = {random_cluster_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(KAFKA_ID.fullmatch(i) and not i.startswith("-") for i in ids)


# A stand-in `java`: formatting succeeds or fails, and the broker exits at once.
FAKE_JAVA = """#!/bin/sh
case "$*" in
  *kafka.tools.StorageTool*)
    [ "$FAIL_FORMAT" = 1 ] && { echo "format refused" >&2; exit 1; }
    exit 0;;
  *) echo "broker gave up" >&2; exit 3;;
esac
"""


@pytest.fixture
def jvm_that_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    java_home = tmp_path / "jdk"
    (java_home / "bin").mkdir(parents=True)
    java = java_home / "bin" / "java"
    java.write_text(FAKE_JAVA)
    java.chmod(0o755)
    libs = tmp_path / "libs"
    libs.mkdir()
    monkeypatch.setenv("JAVA_HOME", str(java_home))
    monkeypatch.setattr(local_kafka, "ensure_kafka_jars", lambda: libs)


@pytest.mark.usefixtures("jvm_that_fails")
@pytest.mark.parametrize(
    ("fail_format", "message"),
    [("1", "formatting Kafka storage failed"), ("0", "Kafka exited with code 3")],
)
def test_a_failed_first_start_removes_its_temporary_directory(
    fail_format: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIL_FORMAT", fail_format)
    broker = LocalKafka()
    assert broker.dir.is_dir()

    with pytest.raises(KafkaStartError, match=message):
        broker.start(timeout=30)

    assert not broker.dir.exists()
    assert broker.pid is None


@pytest.mark.usefixtures("jvm_that_fails")
def test_a_failed_start_in_a_with_block_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Path] = []
    mkdtemp = tempfile.mkdtemp  # what devenv.kafka calls for the broker's directory

    def recording_mkdtemp(prefix: str) -> str:
        made.append(Path(mkdtemp(prefix=prefix)))
        return str(made[-1])

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    monkeypatch.setenv("FAIL_FORMAT", "1")

    with pytest.raises(KafkaStartError), LocalKafka():
        pytest.fail("the broker did not start; the block must not run")

    assert len(made) == 1
    assert not made[0].exists()
