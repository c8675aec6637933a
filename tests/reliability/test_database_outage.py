"""PostgreSQL stopped (fast shutdown) or killed (SIGKILL) under write load, then restarted.

Holds when: during the outage every RPC fails fast with UNAVAILABLE (never INTERNAL, never
past its deadline), readiness goes NOT_SERVING, the same process serves again within a few
seconds of the database returning, and every write acknowledged with OK is in the database
afterwards with the content and version the client was told.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from devenv.post_service_process import PostServiceProcess
from devenv.postgres import LocalPostgres
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from tests.reliability import support
from tests.reliability.support import UNAVAILABLE, Outcome, timed_call
from tests.support.health import NOT_SERVING, SERVING, watch_readiness

pytestmark = pytest.mark.e2e

DEADLINE_SECONDS = 5.0
WRITERS = 6
READERS = 2
WARM_UP_SECONDS = 0.8
OUTAGE_SECONDS = 2.0
AFTER_SECONDS = 2.0
# "Within a few seconds": the health poll interval is 1 s and the pool must notice the restart.
RECOVERY_LIMIT_SECONDS = 5.0
DETECTION_LIMIT_SECONDS = 5.0


@dataclass
class PostLedger:
    """What one post's author was told, and what is still uncertain.

    A write that failed may or may not have committed (the database can die between
    COMMIT and its answer), so its content is "pending": allowed, not required.
    """

    post_id: int
    acked_writes: int = 1
    attempted_writes: int = 1
    last_ok: tuple[str, str] = ("", "")
    pending: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class LoadRecord:
    outcomes: list[Outcome] = field(default_factory=list)
    ledgers: dict[int, PostLedger] = field(default_factory=dict)
    failed_create_titles: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)


def _writer(
    stub: PostStub, number: int, mode: str, record: LoadRecord, stop: threading.Event
) -> None:
    rng = random.Random(number)
    author = 100 + number
    own: list[PostLedger] = []
    sequence = 0
    while not stop.is_set():
        sequence += 1
        title, body = f"{mode}-w{number}-{sequence}", f"body {sequence} of writer {number}"
        if not own or rng.random() < 0.4:
            request = pb.PostCreateRequest(auth_id=author, title=title, body=body)
            outcome = timed_call("CreatePost", stub.CreatePost, request, DEADLINE_SECONDS)
            if outcome.ok:
                ledger = PostLedger(outcome.response.post_id, last_ok=(title, body))
                own.append(ledger)
                with record.lock:
                    record.ledgers[ledger.post_id] = ledger
            else:
                with record.lock:
                    record.failed_create_titles.append(title)
        else:
            ledger = rng.choice(own)
            put = pb.PostPutRequest(auth_id=author, post_id=ledger.post_id, title=title, body=body)
            outcome = timed_call("PutPost", stub.PutPost, put, DEADLINE_SECONDS)
            with record.lock:
                ledger.attempted_writes += 1
                if outcome.ok:
                    ledger.acked_writes += 1
                    ledger.last_ok = (title, body)
                    ledger.pending.clear()
                else:
                    ledger.pending.append((title, body))
        record.add(outcome)
        if not outcome.ok:
            time.sleep(0.05)  # a failing client backs off a little, as a real one would


def _reader(stub: PostStub, record: LoadRecord, stop: threading.Event) -> None:
    rng = random.Random(99)
    while not stop.is_set():
        with record.lock:
            known = list(record.ledgers)
        if not known:
            time.sleep(0.02)
            continue
        request = pb.PostGetByIdRequest(post_id=rng.choice(known))
        outcome = timed_call("GetByIdPost", stub.GetByIdPost, request, DEADLINE_SECONDS)
        record.add(outcome)
        time.sleep(0.01 if outcome.ok else 0.05)


@pytest.mark.parametrize("fault", ["fast-stop", "kill"])
def test_database_outage_under_write_load_loses_no_acknowledged_write(
    fault: str,
    private_postgres: LocalPostgres,
    private_service: PostServiceProcess,
    tmp_path: Path,
) -> None:
    assert private_service.process is not None
    pid = private_service.process.pid
    record = LoadRecord()
    stop_load, stop_watch = threading.Event(), threading.Event()
    health_changes: list[tuple[float, int]] = []
    with grpc.insecure_channel(private_service.addr) as channel:
        stub = PostStub(channel)
        threads = [
            threading.Thread(target=_writer, args=(stub, n, fault, record, stop_load))
            for n in range(WRITERS)
        ]
        threads += [
            threading.Thread(target=_reader, args=(stub, record, stop_load)) for _ in range(READERS)
        ]
        watcher = threading.Thread(
            target=watch_readiness, args=(private_service, health_changes, stop_watch)
        )
        watcher.start()
        for thread in threads:
            thread.start()
        try:
            time.sleep(WARM_UP_SECONDS)
            fault_at = time.monotonic()
            if fault == "kill":
                private_postgres.kill()
            else:
                private_postgres.stop("fast")
            down_at = time.monotonic()
            time.sleep(OUTAGE_SECONDS)
            restart_at = time.monotonic()
            private_postgres.start()
            back_at = time.monotonic()
            time.sleep(AFTER_SECONDS)
        finally:
            stop_load.set()
            for thread in threads:
                thread.join(30)
            stop_watch.set()
            watcher.join(10)

    # The same process served throughout: no restart was needed.
    assert private_service.process.poll() is None
    assert private_service.process.pid == pid

    outcomes = sorted(record.outcomes, key=lambda o: o.started)
    before = [o for o in outcomes if o.ended < fault_at]
    during = [o for o in outcomes if o.started >= down_at and o.ended <= restart_at]
    after = [o for o in outcomes if o.started >= back_at]
    failures = [o for o in outcomes if not o.ok]
    not_retryable = [o for o in failures if o.code != UNAVAILABLE]
    slowest_failure = max((o.elapsed for o in failures), default=0.0)
    not_serving_at = next(
        (t for t, s in health_changes if t >= fault_at and s == NOT_SERVING), None
    )
    # (The database accepts connections a little before LocalPostgres.start() returns.)
    serving_again_at = next(
        (t for t, s in health_changes if t >= (not_serving_at or back_at) and s == SERVING), None
    )
    last_failure_after = max((o.ended for o in after if not o.ok), default=back_at)
    first_ok_after = min((o.ended for o in after if o.ok), default=None)
    first_ok_since_restart = min(
        (o.ended for o in outcomes if o.ok and o.ended >= restart_at), default=None
    )
    recovery = last_failure_after - back_at
    problems, committed_unacked_creates = _verify_acknowledged_writes(private_postgres, record)

    def since(moment: float | None, origin: float) -> float | None:
        return None if moment is None else round(moment - origin, 2)

    support.record_figure(
        f"db_outage[{fault}]",
        {
            "rpcs": len(outcomes),
            "codes": support.code_counts(outcomes),
            "non_unavailable_failures": support.code_counts(not_retryable),
            "rpcs_during_outage": len(during),
            "slowest_failed_rpc_s": round(slowest_failure, 3),
            "p99_failed_rpc_s": round(support.percentile((o.elapsed for o in failures), 0.99), 3),
            "readiness_not_serving_after_s": since(not_serving_at, fault_at),
            "readiness_serving_after_restart_began_s": since(serving_again_at, restart_at),
            "first_ok_after_restart_began_s": since(first_ok_since_restart, restart_at),
            "first_ok_after_db_back_s": since(first_ok_after, back_at),
            "last_failure_after_db_back_s": round(recovery, 2),
            "db_restart_took_s": round(back_at - restart_at, 2),
            "acknowledged_posts_checked": len(record.ledgers),
            "acknowledged_writes_checked": sum(le.acked_writes for le in record.ledgers.values()),
            "acknowledged_writes_missing_or_wrong": len(problems),
            "failed_creates_that_committed": committed_unacked_creates,
        },
    )
    support.add_to_figure("db_outage_acknowledged_posts_checked_total", len(record.ledgers))

    # Nothing acknowledged was lost or altered.
    assert record.ledgers, "no write was acknowledged"
    assert not problems, problems[:20]
    # Before the fault, everything worked.
    assert before, "no load before the fault"
    assert all(o.ok for o in before), support.code_counts(before)
    # Fail fast, and only with the retryable status.
    assert not not_retryable, [(o.rpc, o.code.name, o.details) for o in not_retryable][:10]
    assert slowest_failure < DEADLINE_SECONDS
    assert during
    assert all(o.code == UNAVAILABLE for o in during)
    # Readiness follows the database.
    assert not_serving_at is not None, health_changes
    assert not_serving_at - fault_at < DETECTION_LIMIT_SECONDS
    assert serving_again_at is not None, health_changes
    # Recovery: after the database is back, everything succeeds again within a few seconds.
    assert after, "no load after the database came back"
    assert first_ok_after is not None
    assert recovery < RECOVERY_LIMIT_SECONDS, support.code_counts(after)
    assert after[-1].ok


def _verify_acknowledged_writes(
    cluster: LocalPostgres, record: LoadRecord
) -> tuple[list[str], int]:
    """Every acknowledged post exists with its acknowledged content and version.

    Returns the problems found, and how many creates answered with an error had committed.
    """
    problems: list[str] = []
    ids = sorted(record.ledgers)
    found: dict[int, list[str]] = {}
    if ids:
        rows = cluster.psql(
            "SELECT id, version, md5(title), md5(body) FROM posts "
            f"WHERE id IN ({','.join(map(str, ids))})"
        )
        found = {int(line.split("|")[0]): line.split("|")[1:] for line in rows.splitlines()}
    for post_id, ledger in record.ledgers.items():
        if post_id not in found:
            problems.append(f"post {post_id} acknowledged but missing")
            continue
        version, title_md5, body_md5 = found[post_id]
        if not ledger.acked_writes <= int(version) <= ledger.attempted_writes:
            problems.append(
                f"post {post_id}: version {version}, acknowledged {ledger.acked_writes}, "
                f"attempted {ledger.attempted_writes}"
            )
        allowed = {_md5s(content) for content in [ledger.last_ok, *ledger.pending]}
        if (title_md5, body_md5) not in allowed:
            problems.append(f"post {post_id}: content neither the acknowledged nor a pending one")
    committed = 0
    if record.failed_create_titles:
        titles = ",".join(f"'{title}'" for title in record.failed_create_titles)
        committed = int(cluster.psql(f"SELECT count(*) FROM posts WHERE title IN ({titles})"))
    return problems, committed


def _md5s(content: tuple[str, str]) -> tuple[str, str]:
    title, body = content
    return hashlib.md5(title.encode()).hexdigest(), hashlib.md5(body.encode()).hexdigest()


# --- the database answering too late, or refusing connections --------------------------------
# (Run after the outage tests: the refusal test is the one that may leave readiness broken.)


def _hold_session(cluster: LocalPostgres, sql: str) -> threading.Thread:
    """Run ``sql`` in a psql session of its own, in the background."""
    thread = threading.Thread(target=cluster.psql, args=(sql,), daemon=True)
    thread.start()
    time.sleep(0.5)  # connected and running
    return thread


def test_a_statement_timeout_is_unavailable_not_internal(
    private_postgres: LocalPostgres, private_service: PostServiceProcess
) -> None:
    """A lock held past DB_STATEMENT_TIMEOUT_SECONDS (1 s here): the database answers too late."""
    with grpc.insecure_channel(private_service.addr) as channel:
        stub = PostStub(channel)
        holder = _hold_session(
            private_postgres,
            "BEGIN; LOCK TABLE posts IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT",
        )
        read = timed_call("GetByIdPost", stub.GetByIdPost, pb.PostGetByIdRequest(post_id=1), 10)
        write = timed_call(
            "CreatePost", stub.CreatePost, pb.PostCreateRequest(auth_id=7, title="t", body="b"), 10
        )
        holder.join(15)
    support.record_figure(
        "db_statement_timeout",
        {
            o.rpc: {"code": o.code.name, "elapsed_s": round(o.elapsed, 2), "details": o.details}
            for o in (read, write)
        },
    )
    assert (read.code, write.code) == (UNAVAILABLE, UNAVAILABLE), (read, write)
    assert read.elapsed < 3
    assert write.elapsed < 3


def test_a_rotated_password_drains_readiness_and_restoring_it_recovers(
    private_postgres: LocalPostgres, private_service: PostServiceProcess
) -> None:
    """The role's password changes under the running service (a secret rotated in the wrong
    order): new connections fail with 28P01. Readiness must follow, and come back."""
    role, secret = support.SECRET_ROLE, support.SECRET_PASSWORD
    process = private_service
    with grpc.insecure_channel(process.addr) as channel:
        stub = PostStub(channel)
        get = pb.PostGetByIdRequest(post_id=_first_ok_create(stub))
        private_postgres.psql(f"ALTER ROLE {role} PASSWORD 'rotated-elsewhere'")
        try:
            private_postgres.psql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                f"WHERE usename = '{role}'"
            )
            outcomes = []
            readiness_during: set[int] = set()
            rotated_at = time.monotonic()
            while time.monotonic() - rotated_at < 2.0:
                outcomes.append(timed_call("GetByIdPost", stub.GetByIdPost, get, DEADLINE_SECONDS))
                readiness_during.add(process.health("post.Post"))
                time.sleep(0.1)
        finally:
            private_postgres.psql(f"ALTER ROLE {role} PASSWORD '{secret}'")
        restored_at = time.monotonic()
        final = _first_ok(stub, get, timeout=RECOVERY_LIMIT_SECONDS)
        try:
            process.wait_for_status("post.Post", SERVING, RECOVERY_LIMIT_SECONDS)
            serving_after: float | None = round(time.monotonic() - restored_at, 2)
        except TimeoutError:
            serving_after = None
    codes = support.code_counts(outcomes)
    support.record_figure(
        "db_password_rotated",
        {
            "rpcs": len(outcomes),
            "codes": codes,
            "readiness_seen": sorted(readiness_during),
            "serving_after_restore_s": serving_after,
        },
    )
    assert final.ok, final
    assert NOT_SERVING in readiness_during, "readiness stayed SERVING while logins failed"
    assert serving_after is not None, "readiness never came back after the password did"
    assert set(codes) <= {"UNAVAILABLE"}, (codes, {o.details for o in outcomes})


def _first_ok_create(stub: PostStub) -> int:
    request = pb.PostCreateRequest(auth_id=7, title="t", body="b")
    return int(stub.CreatePost(request, timeout=DEADLINE_SECONDS).post_id)


def test_connections_refused_during_shutdown_are_unavailable_and_readiness_recovers(
    private_postgres: LocalPostgres, private_service: PostServiceProcess
) -> None:
    """A smart shutdown refuses new connections ("the database system is shutting down",
    SQLSTATE 57P03) while one session finishes; a restart does the same ("starting up").

    Deterministic version of what the fast-stop test above meets by chance: both the RPCs and
    the readiness probe open new connections in that window.
    """
    process = private_service
    with grpc.insecure_channel(process.addr) as channel:
        stub = PostStub(channel)
        created = stub.CreatePost(
            pb.PostCreateRequest(auth_id=7, title="t", body="b"), timeout=DEADLINE_SECONDS
        )
        get = pb.PostGetByIdRequest(post_id=created.post_id)
        holder = _hold_session(private_postgres, "SELECT pg_sleep(3)")
        private_postgres.psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE usename = '{support.SECRET_ROLE}'"
        )
        private_postgres._run(  # smart: wait for the sleeping session, refuse new ones
            str(private_postgres.bin / "pg_ctl"), "-D", str(private_postgres.data),
            "-m", "smart", "-W", "stop",
        )  # fmt: skip
        refused_at = time.monotonic()
        outcomes = []
        readiness_during: set[int] = set()
        while time.monotonic() - refused_at < 2.0:
            outcomes.append(timed_call("GetByIdPost", stub.GetByIdPost, get, DEADLINE_SECONDS))
            readiness_during.add(process.health("post.Post"))
            time.sleep(0.1)
        holder.join(15)
        _wait_for_shutdown(private_postgres)  # the smart shutdown ends with the last session
        private_postgres.start()
        final = _first_ok(stub, get, timeout=RECOVERY_LIMIT_SECONDS)
        # Is the readiness probe still alive? A plain outage must still be noticed.
        private_postgres.stop("fast")
        stopped_at = time.monotonic()
        try:
            process.wait_for_status("post.Post", NOT_SERVING, DETECTION_LIMIT_SECONDS)
            noticed_after: float | None = round(time.monotonic() - stopped_at, 2)
        except TimeoutError:
            noticed_after = None
        private_postgres.start()
    codes = support.code_counts(outcomes)
    support.record_figure(
        "db_refusing_connections",
        {
            "rpcs": len(outcomes),
            "codes": codes,
            "readiness_seen_while_refusing": sorted(readiness_during),
            "later_outage_noticed_after_s": noticed_after,
        },
    )
    assert final.ok, final
    assert set(codes) <= {"UNAVAILABLE"}, (codes, {o.details for o in outcomes})
    assert NOT_SERVING in readiness_during, "readiness stayed SERVING while connections failed"
    assert noticed_after is not None, "the readiness probe died: a later outage went unnoticed"


def _wait_for_shutdown(cluster: LocalPostgres, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while (cluster.data / "postmaster.pid").exists():
        assert time.monotonic() < deadline, "the smart shutdown never finished"
        time.sleep(0.05)


def _first_ok(stub: PostStub, request: pb.PostGetByIdRequest, timeout: float) -> Outcome:
    deadline = time.monotonic() + timeout
    while True:
        outcome = timed_call("GetByIdPost", stub.GetByIdPost, request, DEADLINE_SECONDS)
        if outcome.ok or time.monotonic() > deadline:
            return outcome
        time.sleep(0.1)
