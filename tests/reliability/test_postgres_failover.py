"""PostgreSQL failover: the primary is lost under write load and its streaming standby promoted.

The service's DB_URL names both servers, the standby first, with
``target_session_attrs=read-write``: `post-service migrate` and `serve` must find the primary by
themselves, before and after the failover, with no restart and no configuration change.

Holds when: every CreatePost answered OK is on the promoted standby afterwards (with synchronous
replication; with asynchronous replication the loss is measured, and shown deterministically
by cutting the standby off first); during the switch writes answer UNAVAILABLE, never
INTERNAL; readiness goes NOT_SERVING and comes back by itself once the standby is promoted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from devenv.post_service_process import PostServiceProcess, run_cli, service_env
from devenv.postgres import PASSWORD, LocalPostgres, read_write_url
from devenv.user_service import StandInUserService
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from tests.reliability import support
from tests.reliability.support import UNAVAILABLE, Outcome, timed_call
from tests.support.health import NOT_SERVING, SERVING, watch_readiness
from tests.support.progress import progress
from tests.support.service_env import env_with_user_service

pytestmark = pytest.mark.e2e

DEADLINE_SECONDS = 5.0
WRITERS = 4
WARM_UP_SECONDS = 1.0
# Between losing the primary and promoting the standby (at least; and not before readiness
# noticed): the operator's (CloudNativePG's) share of the outage, not the service's. Kept
# short; the service's share is measured apart.
DECISION_SECONDS = 1.0
AFTER_RECOVERY_SECONDS = 1.5
# Bounds on the load, whatever happens: it stops at either.
LOAD_LIMIT_SECONDS = 40.0
MAX_WRITES = 6000


@dataclass
class ReplicatedDatabase:
    mode: str
    primary: LocalPostgres
    standby: LocalPostgres
    service: PostServiceProcess


@pytest.fixture
def replicated(
    request: pytest.FixtureRequest, user_service: StandInUserService, tmp_path: Path
) -> Iterator[ReplicatedDatabase]:
    """A primary, its standby (``request.param``: "sync" or "async" replication) and the
    service on both, migrated through the same two-host DB_URL."""
    mode = str(request.param)
    progress(request, f"{request.node.name}: primary + {mode} standby, migrate, serve")
    with LocalPostgres() as primary:
        standby = primary.create_standby(synchronous=mode == "sync")
        try:
            env = env_with_user_service(
                read_write_url(standby, primary),
                user_service.addr,
                DB_STATEMENT_TIMEOUT_SECONDS="1",
            )
            migrated = run_cli("migrate", env=env)
            assert migrated.returncode == 0, migrated.stderr
            service = PostServiceProcess(env, tmp_path / "serve.log").start()
            try:
                yield ReplicatedDatabase(mode, primary, standby, service)
            finally:
                service.stop()
        finally:
            standby.close()


@dataclass
class WriteLoad:
    """CreatePost from several client threads, and what each was answered."""

    outcomes: list[Outcome] = field(default_factory=list)
    acknowledged: list[tuple[int, str]] = field(default_factory=list)  # (post id, title)
    unacknowledged_titles: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def write(self, stub: PostStub, writer: int) -> None:
        sequence = 0
        while not self.stop.is_set() and len(self.outcomes) < MAX_WRITES:
            sequence += 1
            title = f"failover-w{writer}-{sequence}"
            request = pb.PostCreateRequest(auth_id=200 + writer, title=title, body="b")
            outcome = timed_call("CreatePost", stub.CreatePost, request, DEADLINE_SECONDS)
            with self.lock:
                self.outcomes.append(outcome)
                if outcome.ok:
                    self.acknowledged.append((outcome.response.post_id, title))
                else:
                    self.unacknowledged_titles.append(title)
            if not outcome.ok:
                time.sleep(0.05)  # a failing client backs off a little, as a real one would

    def first_ok_since(self, moment: float) -> float | None:
        with self.lock:
            return min(
                (o.ended for o in self.outcomes if o.ok and o.started >= moment), default=None
            )


def wait_until(condition: Callable[[], object], limit: float = LOAD_LIMIT_SECONDS) -> None:
    """Until ``condition()`` is truthy, for at most ``limit`` seconds (a bound, not a claim)."""
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def posts_on(cluster: LocalPostgres, ids: list[int]) -> dict[int, str]:
    """Post id -> title of those posts that exist on ``cluster``."""
    if not ids:
        return {}
    rows = cluster.psql(f"SELECT id, title FROM posts WHERE id IN ({','.join(map(str, ids))})")
    return {
        int(post_id): title for post_id, title in (row.split("|", 1) for row in rows.splitlines())
    }


def titles_on(cluster: LocalPostgres, titles: list[str]) -> set[str]:
    if not titles:
        return set()
    quoted = ",".join(f"'{title}'" for title in titles)
    found = cluster.psql(f"SELECT title FROM posts WHERE title IN ({quoted})")
    return set(found.splitlines())


def test_migrate_finds_the_primary_among_the_hosts_and_never_writes_to_a_standby() -> None:
    with LocalPostgres() as primary:
        standby = primary.create_standby(synchronous=False)
        try:
            standby_only = run_cli(
                "migrate", "--timeout", "1", env=service_env(read_write_url(standby))
            )
            both = run_cli("migrate", env=service_env(read_write_url(standby, primary)))
        finally:
            standby.close()
    assert standby_only.returncode == 1
    assert (
        f"no read-write server at 127.0.0.1:{standby.port}: the hosts answered, none is "
        "read-write" in standby_only.stderr
    )
    assert both.returncode == 0, both.stderr
    assert PASSWORD not in standby_only.stderr + both.stderr


@pytest.mark.parametrize("replicated", ["sync", "async"], indirect=True)
def test_failover_under_write_load_answers_unavailable_then_writes_to_the_promoted_standby(
    replicated: ReplicatedDatabase,
) -> None:
    service, primary, standby = replicated.service, replicated.primary, replicated.standby
    assert service.process is not None
    pid = service.process.pid
    load, readiness, stop_watching = WriteLoad(), list[tuple[float, int]](), threading.Event()
    watcher = threading.Thread(target=watch_readiness, args=(service, readiness, stop_watching))
    with grpc.insecure_channel(service.addr) as channel:
        stub = PostStub(channel)
        writers = [threading.Thread(target=load.write, args=(stub, n)) for n in range(WRITERS)]
        for thread in [watcher, *writers]:
            thread.start()
        try:
            time.sleep(WARM_UP_SECONDS)
            fault_at = time.monotonic()
            primary.stop("immediate")  # a crash: no shutdown checkpoint, no goodbye to clients
            down_at = time.monotonic()
            # Promote once readiness has had its chance to notice (it polls every second).
            wait_until(lambda: NOT_SERVING in (status for t, status in readiness if t > fault_at))
            time.sleep(max(0.0, down_at + DECISION_SECONDS - time.monotonic()))
            promote_at = time.monotonic()
            standby.promote()
            promoted_at = time.monotonic()
            wait_until(lambda: load.first_ok_since(promoted_at))
            time.sleep(AFTER_RECOVERY_SECONDS)
        finally:
            load.stop.set()
            for thread in writers:
                thread.join(30)
            stop_watching.set()
            watcher.join(10)

    outcomes = sorted(load.outcomes, key=lambda o: o.started)
    failures = [o for o in outcomes if not o.ok]
    first_failure = min((o.ended for o in failures), default=None)
    first_ok_after = load.first_ok_since(down_at)
    not_serving_at = next((t for t, s in readiness if t >= fault_at and s == NOT_SERVING), None)
    serving_at = next((t for t, s in readiness if t >= promote_at and s == SERVING), None)
    on_new_primary = posts_on(standby, [post_id for post_id, _ in load.acknowledged])
    lost = [(i, title) for i, title in load.acknowledged if on_new_primary.get(i) != title]
    # A lost create can take the id sequence's progress with it: the new primary then gives
    # the same id to another post.
    reused = [(i, title) for i, title in lost if i in on_new_primary]
    committed_unacknowledged = titles_on(standby, load.unacknowledged_titles)

    def since(moment: float | None, origin: float | None) -> float | None:
        return None if moment is None or origin is None else round(moment - origin, 2)

    support.record_figure(
        f"pg_failover[{replicated.mode}]",
        {
            "writes_attempted": len(outcomes),
            "writes_acknowledged": len(load.acknowledged),
            "acknowledged_writes_lost": len(lost),
            "acknowledged_ids_now_another_post": len(reused),
            "unacknowledged_writes_that_committed": len(committed_unacknowledged),
            "codes": support.code_counts(outcomes),
            "recovery_first_failure_to_first_ok_s": since(first_ok_after, first_failure),
            "first_ok_after_promotion_began_s": since(first_ok_after, promote_at),
            "promotion_took_s": round(promoted_at - promote_at, 2),
            "readiness_not_serving_after_fault_s": since(not_serving_at, fault_at),
            "readiness_serving_after_promotion_began_s": since(serving_at, promote_at),
        },
    )
    support.add_to_figure("pg_failover_acknowledged_writes_checked_total", len(load.acknowledged))

    assert all(o.ok for o in outcomes if o.ended < fault_at), "failed before the fault"
    # During the switch: retryable failures only.
    assert failures, "the fault went unnoticed"
    assert {o.code for o in failures} == {UNAVAILABLE}, support.code_counts(failures)
    # Readiness follows: out while there is no primary, back once the standby is promoted.
    assert not_serving_at is not None, readiness
    assert not_serving_at < promote_at, readiness
    assert serving_at is not None, readiness
    # The same process writes to the new primary; nothing it acknowledged went missing.
    assert first_ok_after is not None
    assert first_ok_after > promote_at  # (pg_ctl promote notices a moment after the server)
    assert outcomes[-1].ok
    assert service.process.poll() is None
    assert service.process.pid == pid
    assert not standby.in_recovery()
    # The operator is told which servers were tried, and never the password.
    both = f"127.0.0.1:{standby.port}, 127.0.0.1:{primary.port}"
    assert f"readiness NOT_SERVING: no read-write server reachable at {both}" in service.logs()
    assert PASSWORD not in service.logs()
    if replicated.mode == "sync":
        assert not lost, lost[:20]
        assert not reused, reused[:20]


@pytest.mark.parametrize("replicated", ["sync", "async"], indirect=True)
def test_writes_while_the_standby_is_cut_off_are_lost_at_failover_only_if_asynchronous(
    replicated: ReplicatedDatabase,
) -> None:
    """The window asynchronous replication leaves, made deterministic: the standby stops
    receiving WAL (a broken link), writes go on, then the primary is lost."""
    service, primary, standby = replicated.service, replicated.primary, replicated.standby
    with grpc.insecure_channel(service.addr) as channel:
        stub = PostStub(channel)

        def create(title: str) -> Outcome:
            request = pb.PostCreateRequest(auth_id=300, title=title, body="b")
            return timed_call("CreatePost", stub.CreatePost, request, DEADLINE_SECONDS)

        before = [create(f"before-{n}") for n in range(5)]
        standby.cut_off()
        wait_until(lambda: not standby.receiving_wal())
        assert not standby.receiving_wal()
        with ThreadPoolExecutor(3) as pool:
            during = list(pool.map(create, [f"during-{n}" for n in range(3)]))
        readiness_while_cut_off = service.health("post.Post")

        primary.stop("immediate")
        standby.promote()
        wait_until(lambda: create("probe").ok)
        after = create("after")

    on_new_primary = titles_on(standby, [f"before-{n}" for n in range(5)] + ["after"])
    during_kept = titles_on(standby, [f"during-{n}" for n in range(3)])
    acknowledged_during = [o for o in during if o.ok]
    support.record_figure(
        f"pg_standby_cut_off[{replicated.mode}]",
        {
            "writes_while_cut_off": support.code_counts(during),
            "slowest_write_while_cut_off_s": round(max(o.elapsed for o in during), 2),
            "readiness_while_cut_off": health_pb2.HealthCheckResponse.ServingStatus.Name(
                readiness_while_cut_off
            ),
            "acknowledged_writes_lost": len(acknowledged_during) - len(during_kept),
        },
    )

    assert all(o.ok for o in before)
    assert after.ok
    assert on_new_primary == {*(f"before-{n}" for n in range(5)), "after"}
    if replicated.mode == "sync":
        # No standby confirmation, no acknowledgement: the commits wait until the service
        # gives up on them (DB_STATEMENT_TIMEOUT_SECONDS + 1 s) and answers UNAVAILABLE.
        assert {o.code for o in during} == {UNAVAILABLE}
        assert not during_kept  # committed on the lost primary only: never acknowledged
    else:
        # Acknowledged at once, and gone with the primary.
        assert len(acknowledged_during) == 3
        assert not during_kept
