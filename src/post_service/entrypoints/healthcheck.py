"""`post-service healthcheck`: a gRPC health probe for `helm test` and humans."""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check_health(addr: str, service: str, timeout_seconds: float) -> int:
    with grpc.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            # wait_for_ready: a refused first connection is retried within the timeout, as
            # when a NetworkPolicy controller has not yet admitted a just-started pod.
            response = stub.Check(
                health_pb2.HealthCheckRequest(service=service),
                timeout=timeout_seconds,
                wait_for_ready=True,
            )
        except grpc.RpcError as error:
            print(f"{addr} {service!r}: {error.code().name}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    print(f"{addr} {service!r}: {status}")
    return 0 if response.status == health_pb2.HealthCheckResponse.SERVING else 1
