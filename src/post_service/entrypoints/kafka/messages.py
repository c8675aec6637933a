"""Reads the platform's deletion messages: JSON objects like {"id": 42}."""

from __future__ import annotations

import json

from post_service.domain.posts import MAX_ID


class MalformedMessage(Exception):
    """The message can never be applied; it goes to the dead-letter topic."""


def parse_target_id(value: bytes | None, max_bytes: int) -> int:
    if value is None:
        raise MalformedMessage("empty value")
    if len(value) > max_bytes:
        raise MalformedMessage(f"value of {len(value)} bytes exceeds {max_bytes}")
    try:
        document = json.loads(value)
    except (UnicodeDecodeError, ValueError):
        raise MalformedMessage("value is not JSON") from None
    if not isinstance(document, dict):
        raise MalformedMessage("value is not a JSON object")
    if "id" not in document:
        raise MalformedMessage('no "id" field')
    target = document["id"]
    # bool is an int in Python; true must not mean post 1.
    if not isinstance(target, int) or isinstance(target, bool):
        raise MalformedMessage('"id" is not an integer')
    if not 0 < target <= MAX_ID:
        raise MalformedMessage(f'"id" {target} is not a positive 32-bit id')
    return target
