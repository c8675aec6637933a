"""What post.v2 adds to a post: its times, its version (etag, revision count), its earlier
revisions, partial updates, and request ids that make a create safe to retry."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from post_service.domain.errors import InvalidPost
from post_service.domain.posts import PostContent, PostSummary, validate_content

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UPDATABLE_FIELDS = ("title", "body")
_ETAG = re.compile(r'(?:W/)?"([1-9][0-9]{0,9})"')


@dataclass(slots=True)
class VersionedPost(PostSummary):
    """A whole post with its times as microseconds since the Unix epoch (UTC): listings
    carry them for every post, and integers cost less to move around than datetimes."""

    created_us: int
    updated_us: int
    version: int

    @property
    def revision(self) -> int:
        """How many times it was edited: every edit bumps the version by one."""
        return self.version - 1

    @property
    def etag(self) -> str:
        return etag_of(self.version)


@dataclass(slots=True)
class Revision:
    """A post's content as it was before an edit; ``revision`` 0 is the post as created."""

    revision: int
    title: str
    body: str
    created_us: int


@dataclass(frozen=True, slots=True)
class PostChange:
    """The validated new values of an update; None leaves that field as it is."""

    title: str | None
    body: str | None


def micros(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def etag_of(version: int) -> str:
    return f'"{version}"'


def parse_etag(etag: str) -> int | None:
    """The version an etag names; None for no etag (act on any version)."""
    if not etag:
        return None
    match = _ETAG.fullmatch(etag)
    if match is None:
        raise InvalidPost("etag", "is not an etag this service issued")
    return int(match.group(1))


def resolve_change(paths: Sequence[str], title: str, body: str, max_body_chars: int) -> PostChange:
    """The fields an update mask names, validated; an empty mask names the non-empty ones."""
    if not paths:
        paths = [name for name, value in (("title", title), ("body", body)) if value]
        if not paths:
            raise InvalidPost("update_mask", "names no field and title and body are empty")
    elif "*" in paths:
        paths = list(UPDATABLE_FIELDS)
    unknown = sorted(set(paths) - set(UPDATABLE_FIELDS))
    if unknown:
        raise InvalidPost("update_mask", f"only title and body can be updated, not {unknown}")
    # Validate as a whole post would be: a masked-out field gets a placeholder that passes.
    content = validate_content(
        title if "title" in paths else "-", body if "body" in paths else "-", max_body_chars
    )
    return PostChange(
        title=content.title if "title" in paths else None,
        body=content.body if "body" in paths else None,
    )


def parse_request_id(request_id: str) -> uuid.UUID | None:
    if not request_id:
        return None
    try:
        return uuid.UUID(request_id)
    except ValueError:
        raise InvalidPost("request_id", "must be a UUID") from None


def request_fingerprint(author_id: int, content: PostContent) -> bytes:
    """What a retry must repeat exactly to get the original post back."""
    digest = hashlib.sha256()
    for part in (str(author_id), content.title, content.body):
        encoded = part.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
    return digest.digest()
