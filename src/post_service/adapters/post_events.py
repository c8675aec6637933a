"""The JSON form of post events on Kafka (schema: schemas/post_event.schema.json).

Encoded once, when the outbox row is written, so the bytes published are exactly
what was committed with the change.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from post_service.domain.events import PostCreated, PostDeleted, PostEvent, PostUpdated
from post_service.domain.posts import Post

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
