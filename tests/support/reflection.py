"""What a server says about itself through gRPC server reflection, as grpcurl would ask."""

from __future__ import annotations

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

V1_METHODS = {
    "CreatePost",
    "DeletePost",
    "GetGroupPost",
    "GetByIdPost",
    "GetByIdUserPost",
    "PutPost",
}


def reflected(addr: str, service: str) -> tuple[set[str], set[str]]:
    """The services ``addr`` lists, and the method names it describes for ``service``."""
    with grpc.insecure_channel(addr) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        descriptor = DescriptorPool(database).FindServiceByName(service)
    return services, {method.name for method in descriptor.methods}
