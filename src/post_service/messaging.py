"""Post events and dead letters as Kafka records, and the ports they are published through.

The one owner of the record format: the JSON value of a post event (schema:
schemas/post_event.schema.json), its key (the post id, so one post's events stay in
order on one partition) and headers, and the headers a dead letter carries. No use case
publishes directly: the store writes event values into the outbox with the change, the
relay sends them, and the consumer dead-letters what it cannot apply.

Event values are encoded once, when the outbox row is written, so the bytes published
are exactly what was committed with the change.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from post_service.domain.events import PostCreated, PostDeleted, PostEvent, PostUpdated
from post_service.domain.posts import Post

TRACE_HEADERS = ("traceparent", "tracestate")


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One Kafka record, ready to send: key, value and headers as bytes."""

    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class PublishFailed(Exception):
    """The broker did not acknowledge (or could not be reached); nothing may be assumed sent."""


class MessagePublisher(Protocol):
    """Sends records and returns once the broker acknowledged all (acks=all), else raises."""

    async def publish(self, topic: str, messages: Sequence[OutboundMessage]) -> None: ...


Publish = Callable[[Sequence[OutboundMessage]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    pending: int
    oldest_age_seconds: float


class Outbox(Protocol):
    async def relay_pending(self, publish: Publish, limit: int) -> int:
        """Publish up to ``limit`` unsent events in order and mark them sent; returns how many.

        Returns 0 without publishing while another replica is relaying.
        """
        ...

    async def prune_sent(self, older_than: timedelta) -> int: ...

    async def backlog(self) -> OutboxBacklog: ...


# --- post events ------------------------------------------------------------------------

CONTENT_TYPE = "application/json"


def event_type(event: PostEvent) -> str:
    match event:
        case PostCreated():
            return "post.created"
        case PostUpdated():
            return "post.updated"
        case PostDeleted():
            return "post.deleted"


def post_id_of(event: PostEvent) -> int:
    return event.post_id if isinstance(event, PostDeleted) else event.post.id


def encode_event(event: PostEvent, event_id: UUID, occurred_at: datetime) -> str:
    payload: dict[str, Any] = {
        "event_id": str(event_id),
        "event_type": event_type(event),
        "occurred_at": rfc3339(occurred_at),
    }
    if isinstance(event, PostDeleted):
        payload["post"] = {"id": event.post_id, "author_id": event.author_id}
        payload["reason"] = event.reason.value
    else:
        payload["post"] = _post_fields(event.post)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def _post_fields(post: Post) -> dict[str, Any]:
    return {
        "id": post.id,
        "author_id": post.author_id,
        "title": post.title,
        "body": post.body,
        "created_at": rfc3339(post.created_at),
        "updated_at": rfc3339(post.updated_at),
        "version": post.version,
    }


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def post_event_message(
    post_id: int, event_type: str, payload: str, trace_context: Mapping[str, str]
) -> OutboundMessage:
    """A committed outbox row as the record the relay sends."""
    headers = [("content-type", CONTENT_TYPE.encode()), ("event_type", event_type.encode())]
    headers += [
        (name, trace_context[name].encode()) for name in TRACE_HEADERS if name in trace_context
    ]
    return OutboundMessage(
        key=str(post_id).encode(), value=payload.encode(), headers=tuple(headers)
    )


# --- dead letters -----------------------------------------------------------------------


def dead_letter_message(
    origin: tuple[str, int, int],
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
    error: str,
) -> OutboundMessage:
    """A consumed record for the dead-letter topic: as it came, plus where from and why."""
    topic, partition, offset = origin
    return OutboundMessage(
        key=key or b"",
        value=value or b"",
        headers=(
            *headers,
            ("x-origin-topic", topic.encode()),
            ("x-origin-partition", str(partition).encode()),
            ("x-origin-offset", str(offset).encode()),
            ("x-error", error.encode()),
        ),
    )
