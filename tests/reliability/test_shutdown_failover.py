"""SIGTERM under load, with a second instance on the same database to fail over to.

Holds when: requests the first instance had accepted complete with OK; requests it refuses
are refused with UNAVAILABLE (so a client may retry them elsewhere), which a failing-over
client turns into zero visible failures; no retried write is applied twice; and the process
exits 0 within its grace period.
"""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from devenv.lifecycle import free_port
from devenv.post_service_process import PostServiceProcess
from devenv.postgres import LocalPostgres
from devenv.user_service import StandInUserService
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from tests.reliability import support
from tests.reliability.support import OK, UNAVAILABLE, Outcome, timed_call
from tests.support.service_env import SLOW_USER_SERVICE, env_with_user_service

pytestmark = pytest.mark.e2e

GRACE_SECONDS = 8.0
CLIENTS = 8
USER_SERVICE_DELAY = 0.4  # keeps every request in flight long enough to straddle SIGTERM
LOAD_BEFORE_SECONDS = 1.5
LOAD_AFTER_SECONDS = 1.5
ACCEPTED_MARGIN_SECONDS = 0.1


@dataclass
class Attempt:
    instance: str
    outcome: Outcome


@dataclass
class FailoverClient:
    """Sends to the first instance; on UNAVAILABLE moves to the next and retries there."""

    stubs: list[tuple[str, PostStub]]
    attempts: list[Attempt] = field(default_factory=list)
    current: int = 0

    def call(self, rpc: str, request: Any) -> Outcome:
        for _ in range(len(self.stubs) * 2):
            name, stub = self.stubs[self.current]
            outcome = timed_call(rpc, getattr(stub, rpc), request, 10)
            self.attempts.append(Attempt(name, outcome))
            if outcome.code != UNAVAILABLE:
                return outcome
            self.current = (self.current + 1) % len(self.stubs)
        return outcome


def test_sigterm_completes_accepted_requests_and_clients_fail_over_without_errors(
    db_url: str, postgres: LocalPostgres, user_service: StandInUserService, tmp_path: Path
) -> None:
    env = env_with_user_service(
        db_url, user_service.addr, **SLOW_USER_SERVICE, SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS)
    )
    first = PostServiceProcess(env, tmp_path / "first.log")
    second = PostServiceProcess({**env, "METRICS_PORT": str(free_port())}, tmp_path / "second.log")
    with ThreadPoolExecutor(max_workers=2) as starting:  # start-up is mostly imports: overlap it
        list(starting.map(PostServiceProcess.start, (first, second)))
    user_service.delay_seconds = USER_SERVICE_DELAY
    stop = threading.Event()
    finals: list[tuple[Outcome, str]] = []
    clients: list[FailoverClient] = []
    lock = threading.Lock()
    marker = f"failover-{time.time_ns()}"
    counter = itertools.count()

    def client_loop(number: int) -> None:
        channels = [grpc.insecure_channel(first.addr), grpc.insecure_channel(second.addr)]
        client = FailoverClient(
            [("first", PostStub(channels[0])), ("second", PostStub(channels[1]))]
        )
        with lock:
            clients.append(client)
        try:
            while not stop.is_set():
                n = next(counter)
                title = ""
                if n % 3 == 0:
                    title = f"{marker}-{n}"
                    request: Any = pb.PostCreateRequest(auth_id=40 + number, title=title, body="b")
                    outcome = client.call("CreatePost", request)
                elif n % 3 == 1:
                    outcome = client.call("GetGroupPost", pb.PostGetGroupRequest(limit=3))
                else:
                    outcome = client.call(
                        "GetByIdUserPost", pb.PostGetByIdUserRequest(auth_id=40 + number)
                    )
                with lock:
                    finals.append((outcome, title))
        finally:
            for channel in channels:
                channel.close()

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(LOAD_BEFORE_SECONDS)
        assert first.process is not None
        sigterm_at = time.monotonic()
        exit_code = first.terminate(timeout=GRACE_SECONDS + 10)
        exited_after = time.monotonic() - sigterm_at
        time.sleep(LOAD_AFTER_SECONDS)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        user_service.delay_seconds = 0.0
        first.stop()
        second_alive = second.process is not None and second.process.poll() is None
        second.stop()

    attempts = [a for client in clients for a in client.attempts]
    on_first = [a.outcome for a in attempts if a.instance == "first"]
    straddling = [o for o in on_first if o.started < sigterm_at < o.ended]
    # Started well before the signal: surely accepted by then (loopback takes ~1 ms).
    accepted = [o for o in straddling if o.started < sigterm_at - ACCEPTED_MARGIN_SECONDS]
    completed_in_flight = [o for o in accepted if o.ok]
    refused = [o for o in on_first if o.code == UNAVAILABLE]
    final_codes = support.code_counts(o for o, _ in finals)
    acked_titles = [title for outcome, title in finals if title and outcome.ok]
    stored = _count_titles(postgres, marker)
    duplicated = {title: n for title, n in stored.items() if n > 1}
    missing = [title for title in acked_titles if title not in stored]

    support.record_figure(
        "sigterm_failover",
        {
            "client_requests": len(finals),
            "client_visible_codes": final_codes,
            "attempts_on_first": support.code_counts(on_first),
            "in_flight_at_sigterm": len(straddling),
            "accepted_before_sigterm": len(accepted),
            "accepted_completed_ok": len(completed_in_flight),
            "refused_unavailable_then_retried": len(refused),
            "exit_code": exit_code,
            "exit_after_sigterm_s": round(exited_after, 2),
            "grace_s": GRACE_SECONDS,
            "acknowledged_creates_checked": len(acked_titles),
            "duplicated_creates": len(duplicated),
        },
    )
    assert exit_code == 0
    assert exited_after < GRACE_SECONDS
    assert second_alive
    assert set(final_codes) == {"OK"}, final_codes
    assert {o.code for o in on_first} <= {OK, UNAVAILABLE}, support.code_counts(on_first)
    assert accepted, "no request was in flight when SIGTERM arrived"
    assert all(o.ok for o in accepted), support.code_counts(accepted)
    assert not missing, missing[:10]
    assert not duplicated, duplicated


def _count_titles(cluster: LocalPostgres, marker: str) -> dict[str, int]:
    rows = cluster.psql(
        f"SELECT title, count(*) FROM posts WHERE title LIKE '{marker}-%' GROUP BY 1"
    )
    return {title: int(n) for title, n in (line.split("|") for line in rows.splitlines() if line)}
