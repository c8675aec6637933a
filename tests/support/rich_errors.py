"""Reading post.v2's errors as a client does: the status and its google.rpc details."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass
class RichError:
    code: grpc.StatusCode
    message: str
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    field_violations: list[tuple[str, str]] = field(default_factory=list)
    resources: list[tuple[str, str]] = field(default_factory=list)
    has_details: bool = False


def rich_error(call: Callable[..., Any], request: Any, **kwargs: Any) -> RichError:
    with pytest.raises(grpc.RpcError) as raised:
        call(request, timeout=10, **kwargs)
    error = raised.value
    found = RichError(code=error.code(), message=error.details())
    status = rpc_status.from_call(error)
    if status is None:
        return found
    found.has_details = True
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            found.reason, found.metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.field_violations += [(v.field, v.description) for v in bad.field_violations]
        elif detail.Is(error_details_pb2.ResourceInfo.DESCRIPTOR):
            resource = error_details_pb2.ResourceInfo()
            detail.Unpack(resource)
            found.resources.append((resource.resource_type, resource.resource_name))
    return found
