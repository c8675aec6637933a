#!/bin/sh
# One KRaft node (broker and controller), configured from a few variables:
#   KAFKA_ADVERTISED_HOST (default: kafka, the Service name)  KAFKA_CLUSTER_ID (required)
#   KAFKA_NUM_PARTITIONS (default 3)  KAFKA_HEAP_OPTS (default -Xms256m -Xmx512m)
# Data and logs go to /var/lib/kafka (mount a volume there).
set -eu
data=/var/lib/kafka/data
config=/tmp/server.properties
mkdir -p "$data" /var/lib/kafka/logs
cat >"$config" <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9093
listeners=PLAINTEXT://:9092,CONTROLLER://127.0.0.1:9093
advertised.listeners=PLAINTEXT://${KAFKA_ADVERTISED_HOST:-kafka}:9092
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data
num.partitions=${KAFKA_NUM_PARTITIONS:-3}
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
num.network.threads=2
num.io.threads=2
background.threads=2
PROPERTIES
# shellcheck disable=SC2086  # KAFKA_HEAP_OPTS holds several options
set -- java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -XX:+ExitOnOutOfMemoryError -XX:-UsePerfData -Djava.awt.headless=true \
    -Dkafka.logs.dir=/var/lib/kafka/logs -cp '/opt/kafka/libs/*'
"$@" kafka.tools.StorageTool format --ignore-formatted \
    --cluster-id "${KAFKA_CLUSTER_ID:?KAFKA_CLUSTER_ID is required}" --config "$config"
exec "$@" kafka.Kafka "$config"
