"""The metrics port of the real `post-service serve` process, and the dashboard and rules as a
real Prometheus evaluates them while scraping it.

Two processes are scraped: the session's ``service`` (Kafka off; User-service outage and RPC
errors driven against it) and this module's Kafka-enabled ``kafka_service`` (fresh topics and
database, from tests/e2e/conftest.py; a malformed message dead-lettered, a degraded answer).

Dashboard variables for the local Prometheus (``LOCAL_VARIABLES``): ``$job`` is
``post-service``, the job devenv.prometheus scrapes as; ``$namespace`` is the empty string,
because the local scrape has no ``namespace`` label and the matcher ``namespace=""`` selects
exactly the series without one (so every ``namespace="$namespace"`` keeps its equality matcher,
as in Grafana); ``$__rate_interval`` is 5m so the rates still cover the traffic when a loaded
machine makes the module slow.
"""

from __future__ import annotations

import asyncio
import http.client
import math
import platform
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from devenv.kafka import LocalKafka
from devenv.post_service_process import PostServiceProcess
from devenv.prometheus import JOB_NAME, LocalPrometheus, PrometheusError
from devenv.user_service import StandInUserService
from post_service import service_version
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from post_service._generated.post.v2 import post_pb2 as pb_v2
from post_service._generated.user_post import user_post_pb2
from tests.e2e.test_post_rpcs import wait_until_usernames_resolve
from tests.monitoring import expressions as promql
from tests.monitoring.metric_names import SERVICE_SAMPLE_NAMES
from tests.support.kafka_client import Topics, produce

pytestmark = pytest.mark.e2e

Code: TypeAlias = grpc.StatusCode

POST_SERVICE = pb.DESCRIPTOR.services_by_name["Post"]
USER_SERVICE = user_post_pb2.DESCRIPTOR.services_by_name["UserPost"]
POST_METHODS = frozenset(POST_SERVICE.methods_by_name)
USER_METHODS = frozenset(USER_SERVICE.methods_by_name)
# post.v2 has its own series (degraded responses from start-up); tests/e2e/test_v2_service.py.
V2_SERVICE = pb_v2.DESCRIPTOR.services_by_name["PostService"]

# The grpc_code values of the gRPC Prometheus convention (Go's codes.Code.String()), which the
# dashboard and the rules match on, e.g. grpc_code=~"Unknown|Internal|Unavailable|...".
CONVENTIONAL_CODE_NAMES = {
    Code.OK: "OK",
    Code.CANCELLED: "Canceled",
    Code.UNKNOWN: "Unknown",
    Code.INVALID_ARGUMENT: "InvalidArgument",
    Code.DEADLINE_EXCEEDED: "DeadlineExceeded",
    Code.NOT_FOUND: "NotFound",
    Code.ALREADY_EXISTS: "AlreadyExists",
    Code.PERMISSION_DENIED: "PermissionDenied",
    Code.RESOURCE_EXHAUSTED: "ResourceExhausted",
    Code.FAILED_PRECONDITION: "FailedPrecondition",
    Code.ABORTED: "Aborted",
    Code.OUT_OF_RANGE: "OutOfRange",
    Code.UNIMPLEMENTED: "Unimplemented",
    Code.INTERNAL: "Internal",
    Code.UNAVAILABLE: "Unavailable",
    Code.DATA_LOSS: "DataLoss",
    Code.UNAUTHENTICATED: "Unauthenticated",
}
# Reads either spelling, so the counting tests do not depend on the naming (tested on its own).
CODE_OF_LABEL = {
    **{name: code for code, name in CONVENTIONAL_CODE_NAMES.items()},
    **{code.name: code for code in Code},
}

LATENCY_BOUNDS = ("0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                  "1.0", "2.5", "5.0", "+Inf")  # fmt: skip

AUTHOR, OTHER_USER = 613, 617  # user ids no label may carry
SERVICE_LABELS = frozenset(
    {"grpc_type", "grpc_service", "grpc_method", "grpc_code", "state", "topic", "partition",
     "version", "python_version", "le", "quantile", "worker", "reason", "pool"}
)  # fmt: skip
# prometheus_client's own collectors: python_gc_*{generation}, python_info{...}.
CLIENT_LIBRARY_LABELS = frozenset(
    {"generation", "implementation", "major", "minor", "patchlevel", "version"}
)
# Labels whose values are small integers from a fixed, id-independent domain (checked below):
# a post id that happens to be 1 or 12 would otherwise "collide" with generation="1" or minor="12".
SMALL_INTEGER_LABELS = frozenset({"generation", "major", "minor", "patchlevel", "partition"})

LOCAL_VARIABLES = {
    **promql.GRAFANA_VARIABLES,
    "namespace": "",
    "job": JOB_NAME,
    "__rate_interval": "5m",
}

# --------------------------------------------------------------------------- exposition


@dataclass(frozen=True)
class Exposition:
    text: str
    samples: tuple[Sample, ...]

    @property
    def names(self) -> set[str]:
        return {sample.name for sample in self.samples}

    def matching(self, name: str, **labels: str) -> list[Sample]:
        return [
            s
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        return sum(sample.value for sample in self.matching(name, **labels))

    def by_method_and_code(self, name: str, service: str) -> Counter[tuple[str, Code]]:
        counts: Counter[tuple[str, Code]] = Counter()
        for sample in self.matching(name, grpc_type="unary", grpc_service=service):
            code = CODE_OF_LABEL[sample.labels["grpc_code"]]
            counts[sample.labels["grpc_method"], code] += int(sample.value)  # counts are whole
        return counts


def scrape(port: int) -> Exposition:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    samples = tuple(s for f in text_string_to_metric_families(text) for s in f.samples)
    return Exposition(text, samples)


def request(
    port: int, method: str, path: str, body: bytes | None = None
) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request(method, path, body=body)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def poll(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(interval)


# --------------------------------------------------------------------------- traffic


def is_degraded(response: Any) -> bool:
    """An answer whose every username is empty (User-service did not answer)."""
    if isinstance(response, pb.PostListResponse):
        return bool(response.posts) and all(not p.username for p in response.posts)
    return isinstance(response, pb.PostOutResponse) and not response.username


class CountingStub:
    """A PostStub that counts the status of every call, and the degraded answers, per method."""

    def __init__(self, stub: PostStub) -> None:
        self._stub = stub
        self.codes: Counter[tuple[str, Code]] = Counter()
        self.degraded: Counter[str] = Counter()
        self.post_ids: set[int] = set()

    def __getattr__(self, method: str) -> Callable[..., Any]:
        rpc = getattr(self._stub, method)

        def call(request: Any, timeout: float = 5.0) -> Any:
            try:
                response = rpc(request, timeout=timeout)
            except grpc.RpcError as error:
                self.codes[method, error.code()] += 1
                raise
            self.codes[method, Code.OK] += 1
            self.degraded[method] += is_degraded(response)
            if isinstance(response, pb.PostOutResponse):
                self.post_ids.add(response.post_id)
            return response

        return call


def refused(call: Callable[..., Any], request: Any) -> Code:
    with pytest.raises(grpc.RpcError) as raised:
        call(request)
    code: Code = raised.value.code()
    return code


def every_rpc_with_client_errors(stub: CountingStub) -> int:
    """OK calls of every RPC, then INVALID_ARGUMENT, NOT_FOUND and PERMISSION_DENIED ones."""
    kept: pb.PostOutResponse = stub.CreatePost(
        pb.PostCreateRequest(auth_id=AUTHOR, title="metrics", body="b")
    )
    doomed = stub.CreatePost(pb.PostCreateRequest(auth_id=AUTHOR, title="doomed", body="b"))
    stub.GetByIdPost(pb.PostGetByIdRequest(post_id=kept.post_id))
    stub.GetGroupPost(pb.PostGetGroupRequest(limit=3))
    stub.GetByIdUserPost(pb.PostGetByIdUserRequest(username=f"user-{AUTHOR}"))
    stub.GetByIdUserPost(pb.PostGetByIdUserRequest(auth_id=AUTHOR))
    stub.PutPost(pb.PostPutRequest(auth_id=AUTHOR, post_id=kept.post_id, title="e", body="b"))
    stub.DeletePost(pb.PostDeleteRequest(auth_id=AUTHOR, post_id=doomed.post_id))

    bad_title = pb.PostCreateRequest(auth_id=AUTHOR, title="", body="b")
    assert refused(stub.CreatePost, bad_title) == Code.INVALID_ARGUMENT
    assert refused(stub.GetGroupPost, pb.PostGetGroupRequest(limit=-1)) == Code.INVALID_ARGUMENT
    gone = pb.PostGetByIdRequest(post_id=doomed.post_id)
    assert refused(stub.GetByIdPost, gone) == Code.NOT_FOUND
    nobody = pb.PostGetByIdUserRequest(username="nobody-metrics")
    assert refused(stub.GetByIdUserPost, nobody) == Code.NOT_FOUND
    foreign_edit = pb.PostPutRequest(auth_id=OTHER_USER, post_id=kept.post_id, title="t", body="b")
    assert refused(stub.PutPost, foreign_edit) == Code.PERMISSION_DENIED
    foreign_delete = pb.PostDeleteRequest(auth_id=OTHER_USER, post_id=kept.post_id)
    assert refused(stub.DeletePost, foreign_delete) == Code.PERMISSION_DENIED
    return kept.post_id


def every_rpc_without_user_service(stub: CountingStub, post_id: int) -> None:
    """Degraded answers from every RPC that shows usernames; UNAVAILABLE for a username lookup."""
    assert not stub.GetByIdPost(pb.PostGetByIdRequest(post_id=post_id)).username
    assert stub.GetGroupPost(pb.PostGetGroupRequest(limit=3)).posts
    stub.CreatePost(pb.PostCreateRequest(auth_id=AUTHOR, title="offline", body="b"))
    stub.PutPost(pb.PostPutRequest(auth_id=AUTHOR, post_id=post_id, title="o", body="b"))
    stub.GetByIdUserPost(pb.PostGetByIdUserRequest(auth_id=AUTHOR))
    by_name = pb.PostGetByIdUserRequest(username=f"user-{AUTHOR}")
    assert refused(stub.GetByIdUserPost, by_name) == Code.UNAVAILABLE


def wait_until_scraped(prometheus: LocalPrometheus, port: int) -> None:
    """Until Prometheus holds a sample of ``port`` taken after everything done so far."""
    started = scrape(port).value("grpc_server_started_total")
    instance = f"127.0.0.1:{port}"
    prometheus.wait_for_result(
        f'sum(grpc_server_started_total{{instance="{instance}"}}) >= {started}', timeout=30
    )


@dataclass
class Traffic:
    before: Exposition
    after: Exposition
    calls: CountingStub
    user_service_calls: Counter[str] = field(default_factory=Counter)


@pytest.fixture(scope="module")
def prometheus(
    service: PostServiceProcess, kafka_service_env: dict[str, str]
) -> Iterator[LocalPrometheus]:
    """Started before anything else in the module, so that its first scrapes (targets are
    picked up only every 5 s) overlap the other tests."""
    targets = [
        f"127.0.0.1:{service.metrics_port}",
        f"127.0.0.1:{kafka_service_env['METRICS_PORT']}",
    ]
    with LocalPrometheus(targets, [promql.RULES], scrape_interval="1s") as prom:
        yield prom


@pytest.fixture(scope="module", autouse=True)
def _prometheus_first(prometheus: LocalPrometheus) -> None:
    pass


@pytest.fixture(scope="module")
def traffic(
    service: PostServiceProcess,
    channel: grpc.Channel,
    user_service: StandInUserService,
    prometheus: LocalPrometheus,
) -> Traffic:
    """Two rounds of every RPC with client errors around a User-service outage; each kind of
    call is repeated across a scrape, so Prometheus sees every series rise."""
    stub = CountingStub(PostStub(channel))
    before = scrape(service.metrics_port)
    received = user_service.calls
    by_ids, by_username = len(received.by_ids), len(received.by_username)

    post_id = every_rpc_with_client_errors(stub)
    wait_until_scraped(prometheus, service.metrics_port)
    user_service.stop()
    try:
        every_rpc_without_user_service(stub, post_id)
        wait_until_scraped(prometheus, service.metrics_port)
        every_rpc_without_user_service(stub, post_id)
    finally:
        user_service.start()
    wait_until_usernames_resolve(stub, post_id)  # type: ignore[arg-type]
    wait_until_scraped(prometheus, service.metrics_port)
    every_rpc_with_client_errors(stub)

    # The server counts a call after its status is on the wire: wait for the last one.
    handled = "grpc_server_handled_total"
    calls = sum(stub.codes.values()) + before.value(handled, grpc_service="post.Post")

    def all_counted() -> Exposition | None:
        exposition = scrape(service.metrics_port)
        return exposition if exposition.value(handled, grpc_service="post.Post") >= calls else None

    try:
        after: Exposition = poll(all_counted, timeout=5)
    except TimeoutError:
        after = scrape(service.metrics_port)  # the tests below say what is missing
    assert user_service.calls is received, "the stand-in was reset during the traffic"
    return Traffic(
        before,
        after,
        stub,
        Counter(
            GetByIDs=len(received.by_ids) - by_ids,
            GetByUsername=len(received.by_username) - by_username,
        ),
    )


def delta(traffic: Traffic, name: str, service: str) -> Counter[tuple[str, Code]]:
    after = traffic.after.by_method_and_code(name, service)
    after.subtract(traffic.before.by_method_and_code(name, service))
    return +after  # drops the zeros


@dataclass
class KafkaTraffic:
    exposition: Exposition
    post_ids: set[int]
    topics: Topics


@pytest.fixture(scope="module")
def kafka_traffic(
    kafka_service: PostServiceProcess,
    stub: PostStub,
    kafka: LocalKafka,
    topics: Topics,
    user_service: StandInUserService,
) -> KafkaTraffic:
    """A post (published by the relay) created while User-service is too slow to name its
    author (a degraded answer), and a malformed deletion request (dead-lettered), on the
    Kafka-enabled process (which caches usernames: the name is never looked up before)."""
    user_service.delay_seconds = 1.0  # beyond USER_SERVICE_TIMEOUT_SECONDS (0.3)
    try:
        created = stub.CreatePost(
            pb.PostCreateRequest(auth_id=AUTHOR, title="k", body="b"), timeout=5
        )
    finally:
        user_service.delay_seconds = 0.0
    assert created.username == ""
    asyncio.run(produce(kafka.bootstrap_servers, topics.admin_delete, b"not json"))

    def settled() -> Exposition | None:
        exposition = scrape(kafka_service.metrics_port)
        dead = exposition.value(
            "post_service_consumer_dead_lettered_total", topic=topics.admin_delete
        )
        published = exposition.value("post_service_outbox_published_total")
        lag = exposition.matching("post_service_consumer_lag", topic=topics.admin_delete)
        return exposition if dead >= 1 and published >= 1 and lag else None

    exposition: Exposition = poll(settled, timeout=30)
    return KafkaTraffic(exposition, {created.post_id}, topics)


# --------------------------------------------------------------------------- 1. the port


def test_the_metrics_port_serves_get_metrics_in_the_prometheus_text_format_and_nothing_else(
    service: PostServiceProcess,
) -> None:
    port = service.metrics_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        content_type = response.headers["Content-Type"]
        text = response.read().decode()
    assert content_type.startswith("text/plain; version="), content_type
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["grpc_server_handled"] == "counter"
    assert families["grpc_server_handling_seconds"] == "histogram"
    assert families["post_service_db_pool_size"] == "gauge"
    assert "# TYPE grpc_server_handling_seconds histogram" in text.splitlines()
    assert request(port, "GET", "/metrics?name[]=up").status == 200
    head = request(port, "HEAD", "/metrics")
    assert head.status == 200
    for path in (
        "/",
        "/metric",
        "/metrics/",
        "/metrics/x",
        "/metricsx",
        "/healthz",
        "/favicon.ico",
    ):
        assert request(port, "GET", path).status == 404, path
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        assert request(port, method, "/metrics", b"{}").status == 405, method
    assert request(port, "POST", "/", b"x").status == 405


def test_a_405_names_the_allowed_methods(service: PostServiceProcess) -> None:
    """RFC 9110 section 15.5.6: a 405 response MUST carry an Allow header."""
    response = request(service.metrics_port, "POST", "/metrics", b"{}")
    assert response.status == 405
    allowed = {m.strip() for m in (response.getheader("Allow") or "").split(",")}
    assert allowed == {"GET", "HEAD"}


# --------------------------------------------------------------------------- 2. after traffic


def test_every_rpc_is_counted_by_method_and_status_code(traffic: Traffic) -> None:
    expected = +traffic.calls.codes
    assert {method for method, _ in expected} == POST_METHODS, "the traffic missed an RPC"
    assert {code for _, code in expected} >= {
        Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.PERMISSION_DENIED, Code.UNAVAILABLE,
    }  # fmt: skip
    assert delta(traffic, "grpc_server_handled_total", "post.Post") == expected
    assert delta(traffic, "grpc_server_handling_seconds_count", "post.Post") == expected
    started: Counter[str] = Counter()
    for sample in traffic.after.matching("grpc_server_started_total", grpc_service="post.Post"):
        started[sample.labels["grpc_method"]] += int(sample.value)
        assert sample.labels["grpc_type"] == "unary"
    for sample in traffic.before.matching("grpc_server_started_total", grpc_service="post.Post"):
        started[sample.labels["grpc_method"]] -= int(sample.value)
    per_method: Counter[str] = Counter()
    for (method, _), count in expected.items():
        per_method[method] += count
    assert +started == per_method
    assert not traffic.after.matching(
        "grpc_server_started_total", grpc_service="grpc.health.v1.Health"
    )


def test_status_codes_are_named_as_the_dashboard_and_the_rules_expect(traffic: Traffic) -> None:
    """grpc_code follows the gRPC Prometheus convention (OK, InvalidArgument, NotFound,
    Unavailable...): the server-fault ratio, its alert and panels match on those names."""
    codes = {s.labels["grpc_code"] for s in traffic.after.samples if "grpc_code" in s.labels}
    assert {"OK", "InvalidArgument", "NotFound", "PermissionDenied", "Unavailable"} <= codes, codes
    assert codes <= set(CONVENTIONAL_CODE_NAMES.values()), codes


def test_latency_histogram_resolves_1ms_to_5s_for_every_method(traffic: Traffic) -> None:
    buckets = traffic.after.matching(
        "grpc_server_handling_seconds_bucket", grpc_service="post.Post"
    )
    series: dict[tuple[str, str], dict[str, float]] = {}
    for sample in buckets:
        key = (sample.labels["grpc_method"], sample.labels["grpc_code"])
        series.setdefault(key, {})[sample.labels["le"]] = sample.value
    assert {method for method, _ in series} == POST_METHODS
    for (method, code), by_bound in series.items():
        assert tuple(by_bound) == LATENCY_BOUNDS, (method, code)
        counts = list(by_bound.values())
        assert counts == sorted(counts), f"{method} {code}: buckets are not cumulative"
        total = traffic.after.value(
            "grpc_server_handling_seconds_count", grpc_method=method, grpc_code=code,
            grpc_service="post.Post",
        )  # fmt: skip
        assert by_bound["+Inf"] == total
    # A local call is fast: most land below 1 s, in the buckets that tell 1 ms from 250 ms.
    fast = sum(v["1.0"] for v in series.values())
    assert fast >= 0.9 * sum(v["+Inf"] for v in series.values())


def test_user_service_calls_are_counted_as_grpc_client_metrics(traffic: Traffic) -> None:
    handled = delta(traffic, "grpc_client_handled_total", "user_post.UserPost")
    timed = delta(traffic, "grpc_client_handling_seconds_count", "user_post.UserPost")
    assert handled == timed
    assert {method for method, _ in handled} == {"GetByIDs", "GetByUsername"} <= USER_METHODS
    # Every call the stand-in answered is counted OK (an unknown username NotFound), unless the
    # answer came after USER_SERVICE_TIMEOUT_SECONDS (a loaded machine): DeadlineExceeded.
    received = traffic.user_service_calls
    answered = handled["GetByIDs", Code.OK]
    late = handled["GetByIDs", Code.DEADLINE_EXCEEDED]
    assert answered <= received["GetByIDs"] <= answered + late
    answered = handled["GetByUsername", Code.OK] + handled["GetByUsername", Code.NOT_FOUND]
    late = handled["GetByUsername", Code.DEADLINE_EXCEEDED]
    assert answered <= received["GetByUsername"] <= answered + late
    assert handled["GetByUsername", Code.NOT_FOUND] >= 2
    # The calls made during the outage are counted by the code they failed with.
    for method in ("GetByIDs", "GetByUsername"):
        failed = {
            code
            for (m, code), count in handled.items()
            if m == method and count and code not in (Code.OK, Code.NOT_FOUND)
        }
        assert failed, method
        assert failed <= {Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED}, (method, failed)
    started = traffic.after.value("grpc_client_started_total", grpc_service="user_post.UserPost")
    started -= traffic.before.value("grpc_client_started_total", grpc_service="user_post.UserPost")
    assert started == sum(handled.values())


def test_degraded_responses_are_counted_per_method(traffic: Traffic) -> None:
    expected = +traffic.calls.degraded
    assert set(expected) >= {"GetByIdPost", "GetGroupPost", "CreatePost", "PutPost",
                             "GetByIdUserPost"}  # fmt: skip
    name = "post_service_degraded_responses_total"
    counted = Counter(
        {
            method: traffic.after.value(
                name, grpc_service=POST_SERVICE.full_name, grpc_method=method
            )
            - traffic.before.value(name, grpc_service=POST_SERVICE.full_name, grpc_method=method)
            for method in POST_METHODS
        }
    )
    assert +counted == expected


def test_degraded_responses_have_a_series_per_method_before_any_degraded_answer(
    traffic: Traffic,
) -> None:
    # DeletePost never degrades (it answers no usernames): its series can only be pre-created.
    name = "post_service_degraded_responses_total"
    present = {
        s.labels["grpc_method"]
        for s in traffic.before.matching(name, grpc_service=POST_SERVICE.full_name)
    }
    assert present == POST_METHODS
    assert traffic.after.value(name, grpc_method="DeletePost") == 0


def test_pool_build_and_process_metrics(traffic: Traffic) -> None:
    after = traffic.after
    assert after.value("post_service_db_pool_size", pool="primary") == 20  # DB_POOL_SIZE's default
    in_use = after.value("post_service_db_pool_connections", state="in_use")
    idle = after.value("post_service_db_pool_connections", state="idle")
    assert in_use >= 0
    assert in_use + idle >= 1, "the pool holds the connections the traffic opened"
    assert {s.labels["state"] for s in after.matching("post_service_db_pool_connections")} == {
        "in_use",
        "idle",
    }
    (build,) = after.matching("post_service_build_info")
    assert build.labels == {
        "version": service_version(),
        "python_version": platform.python_version(),
    }
    assert build.value == 1
    assert after.value("process_resident_memory_bytes") > 10 * 2**20
    assert after.value("process_cpu_seconds_total") > 0


# --------------------------------------------------------------------------- 3. Kafka process


def test_a_kafka_enabled_process_exposes_every_documented_metric(
    kafka_traffic: KafkaTraffic,
) -> None:
    exposition = kafka_traffic.exposition
    missing = SERVICE_SAMPLE_NAMES - exposition.names
    assert not missing, f"documented but not exposed: {sorted(missing)}"
    topics = kafka_traffic.topics
    dead = exposition.value("post_service_consumer_dead_lettered_total", topic=topics.admin_delete)
    assert dead == 1
    consumed = {
        s.labels["topic"] for s in exposition.matching("post_service_consumer_processed_total")
    }
    assert consumed == {topics.admin_delete, topics.user_deleted}
    (lag,) = exposition.matching("post_service_consumer_lag", topic=topics.admin_delete)
    assert lag.labels["partition"] in {"0", "1", "2"}
    assert lag.value == 0
    assert exposition.value("post_service_outbox_published_total") >= 1
    assert exposition.value("post_service_degraded_responses_total", grpc_method="CreatePost") == 1


# --------------------------------------------------------------------------- 4. bounded labels


def test_labels_are_bounded_and_never_carry_an_id(
    service: PostServiceProcess,
    kafka_service: PostServiceProcess,
    traffic: Traffic,
    kafka_traffic: KafkaTraffic,
) -> None:
    topics = kafka_traffic.topics
    domains: dict[str, set[str]] = {
        "grpc_type": {"unary"},
        "grpc_service": {POST_SERVICE.full_name, V2_SERVICE.full_name, USER_SERVICE.full_name},
        "grpc_method": set(POST_METHODS | USER_METHODS | set(V2_SERVICE.methods_by_name)),
        "grpc_code": set(CODE_OF_LABEL),
        "state": {"in_use", "idle"},
        "pool": {"primary"},  # "replica" with DB_READ_URL: tests/reliability/test_read_replica.py
        "topic": {topics.admin_delete, topics.user_deleted},
        "worker": {"db-health", "outbox-gauges", "outbox-relay", "deletion-consumer"},
        "reason": {"unavailable", "lagging", "recovery_conflict"},
        "partition": {"0", "1", "2"},
        "python_version": {platform.python_version()},
        "le": set(LATENCY_BOUNDS),
        "generation": {"0", "1", "2"},
        "implementation": {platform.python_implementation()},
        "major": {str(sys.version_info.major)},
        "minor": {str(sys.version_info.minor)},
        "patchlevel": {str(sys.version_info.micro)},
        "version": {service_version(), platform.python_version()},
    }
    post_ids = traffic.calls.post_ids | kafka_traffic.post_ids
    assert len(post_ids) >= 6
    ids = {str(i) for i in post_ids | {AUTHOR, OTHER_USER}}
    for process in (service, kafka_service):
        for sample in scrape(process.metrics_port).samples:
            unexpected = set(sample.labels) - SERVICE_LABELS - CLIENT_LIBRARY_LABELS
            assert not unexpected, f"{sample.name}: label(s) {unexpected}"
            for label, value in sample.labels.items():
                assert value in domains[label], f"{sample.name}: {label}={value!r}"
                if label not in SMALL_INTEGER_LABELS:
                    assert value not in ids, f"{sample.name}: {label}={value!r} is an id"


# --------------------------------------------------------------------------- 5. Prometheus

DASHBOARD_EXPRESSIONS = promql.dashboard_expressions(promql.load_dashboard())
RULE_EXPRESSIONS = promql.rule_expressions()
ALERTS = {rule["alert"] for rule in promql.load_rules() if "alert" in rule}


def red_expression(title_prefix: str, contains: str = "") -> str:
    for panel in promql.dashboard_panels(promql.load_dashboard()):
        if panel["title"].startswith(title_prefix):
            for target in panel.get("targets", []):
                if contains in target["expr"]:
                    return promql.substitute_grafana_variables(target["expr"], LOCAL_VARIABLES)
    raise LookupError(f"no dashboard panel {title_prefix!r} with {contains!r}")


def expect_data_locally(where: str, expr: str) -> bool:
    """False for what a local run cannot have: kube-state-metrics series, and alerts (their
    thresholds: a few seconds of local traffic need not cross them) except the dead-letter one."""
    if "kube_" in expr:
        return False
    if where.startswith("rule ") and where.split()[1] in ALERTS:
        return where.split()[1] == "PostServiceDeadLetters"
    return True


@pytest.fixture(scope="module")
def scraped(
    prometheus: LocalPrometheus,
    service: PostServiceProcess,
    traffic: Traffic,
    kafka_service: PostServiceProcess,
    kafka_traffic: KafkaTraffic,
) -> LocalPrometheus:
    """Prometheus has scraped both processes after their traffic and evaluated the rules."""
    wait_until_scraped(prometheus, service.metrics_port)
    wait_until_scraped(prometheus, kafka_service.metrics_port)
    dead = (
        f'post_service_consumer_dead_lettered_total{{topic="{kafka_traffic.topics.admin_delete}"}}'
    )
    prometheus.wait_for_result(f"{dead} >= 1", timeout=30)
    prometheus.wait_for_result(
        "namespace_job_grpc_service_grpc_method:grpc_server_handling_seconds:histogram_quantile_rate5m",
        timeout=30,
    )
    return prometheus


@pytest.mark.parametrize(
    ("where", "expr"),
    [pytest.param(w, e, id=w) for w, e in DASHBOARD_EXPRESSIONS + RULE_EXPRESSIONS],
)
def test_dashboard_and_rule_expressions_evaluate_on_the_scraped_service(
    scraped: LocalPrometheus, where: str, expr: str
) -> None:
    query = promql.substitute_grafana_variables(expr, LOCAL_VARIABLES)
    payload = scraped.query(query)  # PrometheusError unless it evaluates
    assert payload["status"] == "success"
    assert not payload.get("warnings"), payload["warnings"]
    if expect_data_locally(where, expr):
        try:
            scraped.wait_for_result(query, timeout=3)
        except PrometheusError as error:
            raise AssertionError(f"{where}: no data for {query}") from error


def test_request_rate_error_ratio_and_p99_per_method(scraped: LocalPrometheus) -> None:
    def per_method(expr: str) -> dict[str, float]:
        return {
            r["metric"]["grpc_method"]: float(r["value"][1])
            for r in scraped.wait_for_result(expr, timeout=10)
        }

    rate = per_method(red_expression("Request rate per method"))
    assert set(rate) == POST_METHODS
    assert all(value > 0 for value in rate.values()), rate

    errors = per_method(red_expression("Error ratio per method"))
    assert set(errors) == POST_METHODS
    assert all(0 <= value <= 1 for value in errors.values()), errors
    assert all(value > 0 for value in errors.values()), errors  # each method had errors

    p99 = per_method(red_expression("Latency p50 / p95 / p99", "histogram_quantile(0.99,"))
    assert set(p99) == POST_METHODS
    assert all(0 < value <= 5 and not math.isnan(value) for value in p99.values()), p99


def test_prometheus_evaluates_every_rule_without_error(scraped: LocalPrometheus) -> None:
    expected = {rule.get("alert") or rule["record"] for rule in promql.load_rules()}

    def evaluated() -> list[dict[str, Any]] | None:
        groups = scraped.get("/api/v1/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        done = all(not r.get("lastEvaluation", "0001-").startswith("0001-") for r in rules)
        return rules if done else None

    def firing(rules: list[dict[str, Any]]) -> set[str]:
        return {r["name"] for r in rules if r["type"] == "alerting" and r["alerts"]}

    rules: list[dict[str, Any]] = poll(evaluated, timeout=15)
    assert {rule["name"] for rule in rules} == expected
    broken = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert not broken
    # The first evaluation may predate the scrape that saw the dead letter: wait for the next.
    try:
        poll(lambda: "PostServiceDeadLetters" in firing(evaluated() or []), timeout=15)
    except TimeoutError:
        raise AssertionError(f"PostServiceDeadLetters not firing: {firing(rules)}") from None
