"""Property-based fuzzing of every RPC against the running service (Hypothesis).

Holds when: whatever a caller sends, the answer is OK, INVALID_ARGUMENT, NOT_FOUND,
PERMISSION_DENIED or RESOURCE_EXHAUSTED (never INTERNAL, UNKNOWN or anything else), accepted
content round-trips unchanged, and the process stays up and ready.

Two families: well-formed messages with hostile values (any unicode including NUL, huge and
empty strings, int32 extremes, zero and negative ids and limits), and hand-encoded wire bytes
that Python's protobuf would refuse to build (invalid UTF-8 in string fields, over-long
varints, truncated and random bytes), sent with a raw bytes serializer.

``HYPOTHESIS_PROFILE=long`` runs twenty times as many cases.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devenv.post_service_process import PostServiceProcess
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from tests.reliability import support
from tests.reliability.support import CLIENT_FAULT_CODES, raw_unary, timed_call
from tests.support.health import SERVING
from tests.support.reflection import V1_METHODS

pytestmark = pytest.mark.e2e

LONG = os.environ.get("HYPOTHESIS_PROFILE", "") == "long"
TYPED_EXAMPLES = 160 * (20 if LONG else 1)
RAW_EXAMPLES = 70 * (20 if LONG else 1)
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
FUZZ_AUTHORS = (501, 502, 503)
RPC_TIMEOUT = 15.0


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- strategies -------------------------------------------------------------------------------

SPECIAL_TEXTS = [
    "", " ", "\t\n\r", "\x00", "a\x00b", "\u202e", "\ufeff", "\u200b", "\U0010ffff", "e\u0301",
    "'; DROP TABLE posts; --", "%s %(x)s {0} $1", "\\", "user-1", "user-501", "\ud7ff\ue000",
]  # fmt: skip
HUGE_SIZES = [254, 255, 256, 19_999, 20_000, 20_001, 300_000, 1_100_000]

texts = st.one_of(
    st.text(max_size=300),  # every code point Python can encode, NUL included
    st.sampled_from(SPECIAL_TEXTS),
    st.builds(
        lambda unit, size: unit * size,
        st.sampled_from(["x", "é", "😀", "\x00", " ", "中"]),
        st.sampled_from(HUGE_SIZES),
    ),
)
int32s = st.one_of(
    st.sampled_from([0, 1, -1, 2, INT32_MIN, INT32_MIN + 1, INT32_MAX, INT32_MAX - 1]),
    st.integers(INT32_MIN, INT32_MAX),
    st.integers(-5, 300),
)


@dataclass(frozen=True)
class Rpc:
    name: str
    request: st.SearchStrategy[Any]
    fields: tuple[tuple[int, str], ...]  # (field number, "int" | "str") for wire encoding


def _rpcs(known_ids: list[int]) -> list[Rpc]:
    ids = st.one_of(int32s, st.sampled_from(known_ids))
    authors = st.one_of(int32s, st.sampled_from(FUZZ_AUTHORS))
    return [
        Rpc(
            "CreatePost",
            st.builds(pb.PostCreateRequest, auth_id=authors, title=texts, body=texts),
            ((1, "int"), (2, "str"), (3, "str")),
        ),
        Rpc(
            "DeletePost",
            st.builds(pb.PostDeleteRequest, auth_id=authors, post_id=ids),
            ((1, "int"), (2, "int")),
        ),
        Rpc(
            "GetGroupPost",
            st.builds(pb.PostGetGroupRequest, limit=int32s, last_id=int32s),
            ((1, "int"), (2, "int")),
        ),
        Rpc(
            "GetByIdPost",
            st.builds(pb.PostGetByIdRequest, post_id=ids),
            ((1, "int"),),
        ),
        Rpc(
            "GetByIdUserPost",
            st.builds(pb.PostGetByIdUserRequest, username=texts, auth_id=authors),
            ((1, "str"), (2, "int")),
        ),
        Rpc(
            "PutPost",
            st.builds(pb.PostPutRequest, auth_id=authors, post_id=ids, title=texts, body=texts),
            ((1, "int"), (2, "int"), (3, "str"), (4, "str")),
        ),
    ]


RPC_NAMES = sorted(V1_METHODS)

INVALID_UTF8 = [
    b"\xff", b"\xfe\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", b"a\x80b", b"\xf4\x90\x80\x80",
    b"ok\xed\xbf\xbfok",
]  # fmt: skip


def _wire_field(number: int, kind: str) -> st.SearchStrategy[bytes]:
    if kind == "int":
        # Any 64-bit varint: protobuf truncates out-of-range values into the int32 field.
        return st.integers(-(2**63), 2**64 - 1).map(lambda v: support.wire_int(number, v))
    text = st.one_of(
        st.sampled_from(INVALID_UTF8),
        st.binary(max_size=40).filter(_is_invalid_utf8),
        st.text(max_size=20).map(lambda t: t.encode()),
    )
    return text.map(lambda raw: support.wire_bytes(number, raw))


def _is_invalid_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _raw_message(rpc: Rpc) -> st.SearchStrategy[bytes]:
    fields = st.tuples(*(_wire_field(number, kind) for number, kind in rpc.fields))
    well_formed_but_bad = fields.map(lambda parts: b"".join(parts))
    return st.one_of(
        well_formed_but_bad,
        well_formed_but_bad.map(lambda raw: raw[:-1]),  # truncated
        st.binary(max_size=64),  # anything at all
    )


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def known_ids(service: PostServiceProcess) -> list[int]:
    """A few posts by the fuzz authors, so that edits and deletes sometimes hit something."""
    with grpc.insecure_channel(service.addr) as channel:
        stub = PostStub(channel)
        return [
            stub.CreatePost(
                pb.PostCreateRequest(auth_id=author, title=f"fuzz {n}", body="seed"), timeout=5
            ).post_id
            for n, author in enumerate(FUZZ_AUTHORS * 4)
        ]


def _check_alive(service: PostServiceProcess) -> None:
    assert service.process is not None
    assert service.process.poll() is None, "the service process died"
    assert service.health("post.Post") == SERVING


def _report(kind: str, seen: Counter[tuple[str, str]]) -> None:
    by_rpc: dict[str, dict[str, int]] = {}
    for (rpc, code), n in sorted(seen.items()):
        by_rpc.setdefault(rpc, {})[code] = n
    total = sum(seen.values())
    support.record_figure(f"fuzz_{kind}", {"cases": total, "by_rpc": by_rpc})
    support.add_to_figure("fuzz_cases_total", total)
    print(f"fuzz {kind}: {total} cases: {by_rpc}")


# --- the properties ---------------------------------------------------------------------------


@pytest.mark.parametrize("rpc_name", RPC_NAMES)
def test_hostile_values_get_only_client_fault_statuses(
    rpc_name: str, service: PostServiceProcess, posts: PostStub, known_ids: list[int]
) -> None:
    rpc = next(r for r in _rpcs(known_ids) if r.name == rpc_name)
    method: Callable[..., Any] = getattr(posts, rpc.name)
    seen: Counter[tuple[str, str]] = Counter()
    unexpected: dict[str, Any] = {}

    @_settings(TYPED_EXAMPLES)
    @given(request=rpc.request)
    def property_holds(request: Any) -> None:
        outcome = timed_call(rpc.name, method, request, RPC_TIMEOUT)
        seen[(rpc.name, outcome.code.name)] += 1
        if outcome.code not in CLIENT_FAULT_CODES:
            unexpected.setdefault(outcome.code.name, (_short(request), outcome.details))
            return
        if outcome.ok and rpc.name in ("CreatePost", "PutPost"):
            reply = outcome.response
            assert (reply.title, reply.body) == (request.title, request.body)
            assert reply.post_id > 0

    property_holds()
    _report(f"typed[{rpc_name}]", seen)
    _check_alive(service)
    assert not unexpected, unexpected


@pytest.mark.parametrize("rpc_name", RPC_NAMES)
def test_undecodable_wire_bytes_get_only_client_fault_statuses(
    rpc_name: str, service: PostServiceProcess, channel: grpc.Channel
) -> None:
    rpc = next(r for r in _rpcs([1]) if r.name == rpc_name)
    method = raw_unary(channel, f"/post.Post/{rpc.name}")
    seen: Counter[tuple[str, str]] = Counter()
    unexpected: dict[str, Any] = {}

    @_settings(RAW_EXAMPLES)
    @given(raw=_raw_message(rpc))
    def property_holds(raw: bytes) -> None:
        outcome = timed_call(rpc.name, method, raw, RPC_TIMEOUT)
        seen[(rpc.name, outcome.code.name)] += 1
        if outcome.code not in CLIENT_FAULT_CODES:
            unexpected.setdefault(outcome.code.name, (raw[:80], outcome.details[:200]))

    property_holds()
    _report(f"raw[{rpc_name}]", seen)
    _check_alive(service)
    assert not unexpected, unexpected


def _short(request: Any) -> str:
    text = str(request).replace("\n", " ")
    return text if len(text) < 300 else text[:300] + "..."
