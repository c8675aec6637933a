"""Structured JSON logs, one object per line, with the trace and span ids when in a span."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from opentelemetry import trace

_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(KafkaClientRetries())  # on the handler: logger filters skip children
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka and SQLAlchemy are chatty at INFO; their warnings still come through.
    for noisy in ("aiokafka", "kafka", "sqlalchemy.engine", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class KafkaClientRetries(logging.Filter):
    """aiokafka logs ERROR on every retry of conditions it recovers from by itself.

    A topic missing from the metadata is reported once by the consumer, at WARNING, so
    aiokafka's line on every metadata refresh is dropped; a group coordinator that is not
    available yet (a fresh broker creating its offsets topic) is a WARNING, not an ERROR.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "Topic %s not found in cluster metadata":
            return False
        if record.msg == "Group Coordinator Request failed: %s":
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
