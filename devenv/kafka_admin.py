"""What devenv asks of a running Kafka through the admin client: topics, coordinators, brokers.

``create_topics()`` creates topics the way the platform's topic provisioning does before a
service is deployed (``service_topics()`` names those post-service uses, from its settings), and
waits until a consumer group can find its coordinator, so that a service started next finds a
broker as it would in the cluster. ``run_blocking()`` runs these from synchronous code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from post_service.config import KafkaSettings

PROVISION_TIMEOUT_SECONDS = 30.0
T = TypeVar("T")


# Defined here, not in devenv/kafka.py (which imports this module): create_topics() raises it too.
class KafkaStartError(RuntimeError):
    """The broker did not come up (the message carries the tail of its logs)."""


def service_topics(settings: KafkaSettings) -> tuple[str, ...]:
    """The topics post-service consumes and publishes to, named as its settings name them."""
    return (
        settings.user_deleted_topic,
        settings.admin_delete_post_topic,
        settings.post_events_topic,
        settings.dead_letter_topic,
    )


async def create_topics(
    bootstrap_servers: str,
    topics: Sequence[str],
    partitions: int,
    consumer_group: str | None = None,
    timeout: float = PROVISION_TIMEOUT_SECONDS,  # noqa: ASYNC109
    replication_factor: int = 1,
) -> None:
    """Create ``topics`` unless they exist; then wait until brokers serve them (every replica
    in sync) and, when given, until ``consumer_group`` has a coordinator (the first lookup
    creates ``__consumer_offsets``).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        async with asyncio.timeout(timeout):
            response = await admin.create_topics(
                [NewTopic(t, partitions, replication_factor) for t in topics]
            )
            # Errors come back per topic rather than raised; an existing topic is what we want.
            problems = [
                f"{error[0]}: {for_code(error[1]).__name__} {error[2] if len(error) > 2 else ''}"
                for error in response.topic_errors
                if error[1] not in (0, TopicAlreadyExistsError.errno)
            ]
            if problems:
                raise KafkaStartError("creating topics failed: " + "; ".join(problems))
            await _wait_until_served(admin, topics, replication_factor)
            if consumer_group is not None:
                await _wait_for_coordinator(admin, consumer_group)
    finally:
        await admin.close()


async def _wait_until_served(
    admin: AIOKafkaAdminClient, topics: Sequence[str], replication_factor: int = 1
) -> None:
    """Until the metadata lists every topic with a leader and all replicas in sync for each
    partition."""
    while True:
        described = await admin.describe_topics(list(topics))
        if len(described) == len(topics) and all(
            topic["error_code"] == 0
            and topic["partitions"]
            and all(
                partition["leader"] >= 0 and len(partition["isr"]) >= replication_factor
                for partition in topic["partitions"]
            )
            for topic in described
        ):
            return
        await asyncio.sleep(0.1)


async def _wait_for_coordinator(admin: AIOKafkaAdminClient, group: str) -> None:
    while True:
        try:
            await admin.find_coordinator(group)
            return
        except KafkaError as error:
            if not error.retriable:
                raise
        await asyncio.sleep(0.1)


async def brokers_in_metadata(bootstrap_servers: str, timeout: float = 2.0) -> int:  # noqa: ASYNC109
    """How many brokers the cluster's metadata lists; raises while none answers.

    A broker binds its port before it can serve requests, so a TCP connect alone proves little;
    metadata that lists a broker means clients can bootstrap from it.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000)
    )
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    return len(cluster["brokers"])


def run_blocking(work: Coroutine[Any, Any, T]) -> T:
    """Runs ``work`` to completion from synchronous code, even inside a running event loop
    (async tests stop and start the broker): on its own loop, in a worker thread."""
    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(asyncio.run, work).result()
