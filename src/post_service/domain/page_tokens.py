"""Opaque, tamper-evident page tokens (post.v2, AIP-158).

A token carries a position (the last id a page showed, say) and a MAC over that position
*and* the scope it was issued for, the method and its filter: keyed BLAKE2b, a MAC by design
(RFC 7693) and a third of HMAC-SHA256's cost. A token that
was altered, forged without the key, or presented with another filter fails the tag check
and is refused as ``page_token`` INVALID_ARGUMENT; it can never select someone else's page.
The position is not secret (ids are public), so it is signed, not encrypted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct

from post_service.domain.errors import InvalidPost

FORMAT_VERSION = b"\x01"
TAG_BYTES = 16  # 128 bits: forging one is as hard as guessing the key
MAX_TOKEN_CHARS = 256
_CONTEXT = b"post.v2 page token\x00"


class PageTokens:
    """Issues and opens tokens with one key (32 random bytes, see PageTokenKeys)."""

    def __init__(self, key: bytes) -> None:
        if not 16 <= len(key) <= 64:
            raise ValueError("a page-token key is 16 to 64 bytes (BLAKE2b's key size)")
        self._key = key

    def issue(self, scope: str, layout: str, *position: int | float) -> str:
        payload = FORMAT_VERSION + struct.pack(layout, *position)
        raw = payload + self._tag(scope, payload)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def open(self, scope: str, layout: str, token: str) -> tuple[int | float, ...]:
        """The position in ``token``; InvalidPost("page_token") unless this key issued it
        for exactly this scope."""
        raw = _decode(token)
        payload, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
        expected_length = len(FORMAT_VERSION) + struct.calcsize(layout)
        if len(payload) != expected_length or not payload.startswith(FORMAT_VERSION):
            raise _refused()
        if not hmac.compare_digest(tag, self._tag(scope, payload)):
            raise _refused()
        return struct.unpack(layout, payload[len(FORMAT_VERSION) :])

    def _tag(self, scope: str, payload: bytes) -> bytes:
        message = _CONTEXT + scope.encode("utf-8", "surrogatepass") + b"\x00" + payload
        return hashlib.blake2b(message, key=self._key, digest_size=TAG_BYTES).digest()


def _decode(token: str) -> bytes:
    if len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise _refused()
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise _refused() from None


def _refused() -> InvalidPost:
    return InvalidPost(
        "page_token", "is not a token issued for this request's filter (altered or mismatched)"
    )
