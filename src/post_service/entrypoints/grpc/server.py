"""Builds the grpc.aio server: options, services, health and reflection."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from post_service._generated.post import post_pb2, post_pb2_grpc
from post_service._generated.post.v2 import post_pb2 as post_v2_pb2
from post_service._generated.post.v2 import post_pb2_grpc as post_v2_pb2_grpc
from post_service.config import GrpcSettings
from post_service.entrypoints.grpc.servicer import PostServicer
from post_service.entrypoints.grpc.v2_servicer import PostServiceV2Servicer


def server_options(settings: GrpcSettings) -> list[tuple[str, int]]:
    options = [
        # Refuse oversized requests before reading them into memory.
        ("grpc.max_receive_message_length", settings.max_receive_message_bytes),
        # Without this, a second process could bind the same port and silently share it.
        ("grpc.so_reuseport", 0),
    ]
    if settings.max_connection_age_seconds > 0:
        # A ClusterIP Service balances connections, not requests: recycling the gateway's
        # long-lived connection lets it reach replicas added by the autoscaler.
        options += [
            ("grpc.max_connection_age_ms", int(settings.max_connection_age_seconds * 1000)),
            (
                "grpc.max_connection_age_grace_ms",
                int(settings.max_connection_age_grace_seconds * 1000),
            ),
        ]
    return options


def create_server(
    settings: GrpcSettings,
    servicer: PostServicer,
    health_servicer: health.aio.HealthServicer,
    interceptors: Sequence[grpc.aio.ServerInterceptor],
    v2_servicer: PostServiceV2Servicer,
) -> tuple[grpc.aio.Server, int]:
    """The server and the port it bound (settings.port 0 picks a free one, for tests)."""
    server = grpc.aio.server(interceptors=list(interceptors), options=server_options(settings))
    post_pb2_grpc.add_PostServicer_to_server(servicer, server)
    post_v2_pb2_grpc.add_PostServiceServicer_to_server(v2_servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            post_pb2.DESCRIPTOR.services_by_name["Post"].full_name,
            post_v2_pb2.DESCRIPTOR.services_by_name["PostService"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    if port == 0:
        raise OSError(f"cannot bind gRPC port {settings.host}:{settings.port}")
    return server, port
