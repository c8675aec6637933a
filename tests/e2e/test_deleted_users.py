"""A user deleted on the platform, end to end: the `delete` topic, then the gRPC API."""

from __future__ import annotations

import json

import grpc
import pytest

from devenv.kafka import LocalKafka
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from tests.support.kafka_client import Topics, produce, wait_for

pytestmark = pytest.mark.e2e

DELETED = 131
OTHER = 132


def create(stub: PostStub, author: int) -> pb.PostOutResponse:
    request = pb.PostCreateRequest(auth_id=author, title="t", body="b")
    created: pb.PostOutResponse = stub.CreatePost(request, timeout=5)
    return created


def post_ids_of(stub: PostStub, author: int) -> list[int]:
    listing = stub.GetByIdUserPost(pb.PostGetByIdUserRequest(auth_id=author), timeout=5)
    return [post.post_id for post in listing.posts]


async def test_a_deleted_users_posts_go_and_their_new_posts_are_refused(
    stub: PostStub, kafka: LocalKafka, topics: Topics
) -> None:
    for _ in range(5):  # the module's service deletes in batches of 3
        create(stub, DELETED)
    kept = create(stub, OTHER).post_id

    await produce(
        kafka.bootstrap_servers, topics.user_deleted, json.dumps({"id": DELETED}).encode()
    )
    await wait_for(lambda: post_ids_of(stub, DELETED) == [], timeout=60)

    with pytest.raises(grpc.RpcError) as created:
        create(stub, DELETED)
    with pytest.raises(grpc.RpcError) as edited:
        stub.PutPost(
            pb.PostPutRequest(auth_id=DELETED, post_id=kept, title="mine", body="b"), timeout=5
        )
    for refused in (created.value, edited.value):
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
        assert refused.details() == f"auth_id: user {DELETED} was deleted"
    assert post_ids_of(stub, DELETED) == []
    assert post_ids_of(stub, OTHER) == [kept]
