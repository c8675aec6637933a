"""Log lines an operator reads: no ERROR for what the Kafka client recovers from itself."""

from __future__ import annotations

import logging

from post_service.logs import KafkaClientRetries


def test_kafka_client_retry_noise_is_not_logged_as_errors() -> None:
    noise = KafkaClientRetries()
    missing = logging.makeLogRecord(
        {"msg": "Topic %s not found in cluster metadata", "args": ("delete",), "levelno": 40}
    )
    coordinator = logging.makeLogRecord(
        {"msg": "Group Coordinator Request failed: %s", "args": ("[Error 15]",), "levelno": 40}
    )
    other = logging.makeLogRecord({"msg": "Unexpected error in coordinator routine", "levelno": 40})
    assert noise.filter(missing) is False
    assert noise.filter(coordinator) is True
    assert coordinator.levelname == "WARNING"
    assert noise.filter(other) is True
    assert other.levelno == logging.ERROR
