"""A few seconds of the soak command's load against the session service.

The real soak (minutes, see docs/reliability.md) is not part of the test run; this keeps its
load generator, memory sampling and verdicts from rotting.
"""

from __future__ import annotations

import grpc
import pytest

from devenv.post_service_process import PostServiceProcess
from post_service._generated.post.post_pb2_grpc import PostStub
from tests.reliability import soak, support

pytestmark = pytest.mark.e2e


def test_a_short_soak_has_no_errors_and_reports_latency_and_memory(
    service: PostServiceProcess,
) -> None:
    assert service.process is not None
    with grpc.insecure_channel(service.addr) as channel:
        pool = soak.seed(PostStub(channel), count=30)
    result = soak.run_load(
        service.addr, rate=40, duration=3, pid=service.process.pid, sample_seconds=1, pool=pool
    )
    report = soak.summarize(result)
    support.record_figure(
        "soak_smoke",
        {k: report[k] for k in ("requests", "errors", "latency_s", "late_starts")}
        | {"memory_mib": report["memory"].get("series_mib")},
    )
    assert report["errors"] == 0, report["first_errors"]
    assert report["requests"] == 120
    assert set(report["by_rpc"]) == {name for name, _ in soak.MIX}
    assert report["memory"]["samples"] >= 3
    assert report["latency_s"]["p99"] < 1.0
