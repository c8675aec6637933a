"""``LocalKafkaCluster``: three local Kafka nodes that replicate every topic, for failover tests."""

from __future__ import annotations

import time
from collections.abc import Sequence

from devenv.kafka import START_TIMEOUT_SECONDS, LocalKafka
from devenv.kafka_admin import KafkaStartError, brokers_in_metadata, create_topics, run_blocking
from devenv.kafka_config import random_cluster_id
from devenv.lifecycle import LocalServer, free_port

# What makes a cluster of three tolerate the loss of one node without losing an acknowledged
# record: every partition on all three, and a write (acks=all) acknowledged only once at
# least two hold it. Kafka's own internal topics get the same.
REPLICATED_PROPERTIES = {
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "offsets.topic.replication.factor": "3",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "share.coordinator.state.topic.replication.factor": "3",
    "share.coordinator.state.topic.min.isr": "2",
}


class LocalKafkaCluster(LocalServer):
    """Three KRaft nodes on 127.0.0.1, each broker and controller in one JVM (combined mode: a
    quorum of three controllers survives one loss, with a JVM fewer than separate roles).

    Topics are replicated to all three with ``min.insync.replicas=2``. ``nodes`` are
    ``LocalKafka`` objects, so a test stops, kills and restarts one as it would a single broker.
    """

    SIZE = 3

    def __init__(self, num_partitions: int = 3) -> None:
        ports = _distinct_free_ports(2 * self.SIZE)
        brokers, controllers = ports[: self.SIZE], ports[self.SIZE :]
        voters = ",".join(
            f"{node_id}@127.0.0.1:{port}" for node_id, port in enumerate(controllers, start=1)
        )
        cluster_id = random_cluster_id()
        self.num_partitions = num_partitions
        properties = {**REPLICATED_PROPERTIES, "controller.quorum.voters": voters}
        self.nodes: list[LocalKafka] = []
        try:
            for node_id, (port, controller) in enumerate(zip(brokers, controllers, strict=True), 1):
                node = LocalKafka(
                    port, controller, num_partitions, properties, node_id=node_id,
                    cluster_id=cluster_id,
                )  # fmt: skip
                self.nodes.append(node)
        except BaseException:
            self.close()
            raise

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for node in self.nodes)

    def node(self, node_id: int) -> LocalKafka:
        return next(node for node in self.nodes if node.node_id == node_id)

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> LocalKafkaCluster:
        """Start every node at once (no node is ready before a quorum of controllers is), then
        wait until the metadata lists all three brokers."""
        try:
            for node in self.nodes:
                node._format_storage()
                node._launch()
            for node in self.nodes:
                node._wait_ready(timeout)
                node._has_started = True
            deadline = time.monotonic() + timeout
            while run_blocking(brokers_in_metadata(self.bootstrap_servers)) < self.SIZE:
                if time.monotonic() > deadline:
                    raise KafkaStartError(f"not all {self.SIZE} brokers registered in time")
                time.sleep(0.2)
        except BaseException:
            self.close()
            raise
        return self

    def provision(self, topics: Sequence[str], consumer_group: str | None = None) -> None:
        """Create ``topics`` on all three nodes, as the platform would; returns once every
        replica is in sync."""
        creating = create_topics(
            self.bootstrap_servers, topics, self.num_partitions, consumer_group,
            replication_factor=self.SIZE,
        )  # fmt: skip
        run_blocking(creating)

    def close(self) -> None:
        # Killed rather than stopped: a clean shutdown of the last nodes waits for a
        # controller quorum that is already gone, and the data is thrown away anyway.
        for node in self.nodes:
            node.kill()
        for node in self.nodes:
            node.close()


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports
