"""post.v2 is a first-class citizen of the process: health, reflection and metrics."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from devenv.post_service_process import PostServiceProcess
from devenv.user_service import StandInUserService
from post_service._generated.post.v2 import post_pb2 as pb
from post_service._generated.post.v2.post_pb2_grpc import PostServiceStub
from tests.e2e.test_metrics import scrape
from tests.support.rich_errors import rich_error

pytestmark = pytest.mark.e2e

V2 = "post.v2.PostService"
V2_METHODS = set(pb.DESCRIPTOR.services_by_name["PostService"].methods_by_name)


@pytest.fixture
def posts(channel: grpc.Channel) -> PostServiceStub:
    return PostServiceStub(channel)


def test_health_reports_post_v2(service: PostServiceProcess) -> None:
    assert service.health(V2) == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_and_describes_post_v2(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=V2),
    ]
    listed, described = list(stub.ServerReflectionInfo(iter(requests), timeout=10))
    names = {service.name for service in listed.list_services_response.service}
    assert {"post.Post", V2} <= names
    assert described.file_descriptor_response.file_descriptor_proto


def test_metrics_label_v2_methods_and_count_its_degraded_answers(
    posts: PostServiceStub, service: PostServiceProcess, user_service: StandInUserService
) -> None:
    before = scrape(service.metrics_port)
    degraded = "post_service_degraded_responses_total"
    assert {s.labels["grpc_method"] for s in before.matching(degraded, grpc_service=V2)} == (
        V2_METHODS
    )

    created = posts.CreatePost(pb.CreatePostRequest(auth_id=5, title="t", body="b"), timeout=10)
    rich_error(posts.GetPost, pb.GetPostRequest(id=2**31 - 1))
    user_service.delay_seconds = 2.0  # past the service's 0.3 s deadline: an empty username
    slow = posts.GetPost(pb.GetPostRequest(id=created.id), timeout=10)
    assert slow.author.username == ""
    after = scrape(service.metrics_port)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    handled = "grpc_server_handled_total"
    labels = {"grpc_service": V2, "grpc_type": "unary"}
    assert delta(handled, grpc_method="CreatePost", grpc_code="OK", **labels) == 1
    assert delta(handled, grpc_method="GetPost", grpc_code="OK", **labels) == 1
    assert delta(handled, grpc_method="GetPost", grpc_code="NotFound", **labels) == 1
    assert delta(handled, grpc_service="post.Post") == 0
    assert delta(degraded, grpc_service=V2, grpc_method="GetPost") == 1
    assert delta(degraded, grpc_service="post.Post") == 0
