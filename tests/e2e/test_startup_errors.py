"""What `serve` and `migrate` say when the database is not what this build needs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from devenv.post_service_process import ROOT, PostServiceProcess, run_cli, service_env
from devenv.postgres import PASSWORD, LocalPostgres
from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostStub
from post_service.adapters.postgres.migrations import head_revision
from tests.support.health import NOT_SERVING, SERVING

WRONG_PASSWORD = "definitely-wrong-pw-31"


def test_serve_on_an_unmigrated_database_is_not_ready_until_migrated_and_exits_cleanly(
    fresh_database: str, tmp_path: Path
) -> None:
    service = PostServiceProcess(service_env(fresh_database), tmp_path / "serve.log")
    service.start(wait_for="liveness")
    try:
        service.wait_for_status("post.Post", NOT_SERVING, timeout=30)
        with grpc.insecure_channel(service.addr) as channel:
            with pytest.raises(grpc.RpcError) as refused:
                PostStub(channel).CreatePost(
                    pb.PostCreateRequest(auth_id=1, title="t", body="b"), timeout=10
                )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        expected = f"schema at revision base, this build needs {head_revision()}"
        assert f"{expected}: run post-service migrate" in service.logs()

        assert run_cli("migrate", env=service_env(fresh_database)).returncode == 0
        service.wait_for_status("post.Post", SERVING, timeout=30)
        assert service.terminate() == 0
    finally:
        service.stop()
    assert "Traceback" not in service.logs()
    said = [line for line in service.logs().splitlines() if expected in line]
    assert len(said) == 1, "the cause is logged once, not on every poll"


def test_serve_with_a_wrong_password_logs_the_cause(
    postgres: LocalPostgres, db_url: str, tmp_path: Path
) -> None:
    env = service_env(db_url.replace(PASSWORD, WRONG_PASSWORD))
    service = PostServiceProcess(env, tmp_path / "serve.log").start(wait_for="liveness")
    try:
        service.wait_for_status("post.Post", NOT_SERVING, timeout=30)
        assert service.terminate() == 0
    finally:
        service.stop()
    said = messages(service.logs())
    assert f'authentication failed for role "post" at 127.0.0.1:{postgres.port}' in said
    assert WRONG_PASSWORD not in service.logs()


def test_migrate_with_a_wrong_password_fails_at_once_and_says_why(db_url: str) -> None:
    env = service_env(db_url.replace(PASSWORD, WRONG_PASSWORD))
    # A 10-minute wait would be spent retrying; it must give up on the first answer.
    result = run_cli("migrate", "--timeout", "600", env=env, timeout=60)
    assert result.returncode == 1
    assert 'migration failed: authentication failed for role "post"' in messages(result.stderr)
    assert "Traceback" not in result.stderr
    assert WRONG_PASSWORD not in result.stderr + result.stdout


def test_migrate_into_a_database_that_does_not_exist_says_so_in_one_line(
    postgres: LocalPostgres,
) -> None:
    env = service_env(postgres.url.rsplit("/", 1)[0] + "/never_created")
    result = run_cli("migrate", "--timeout", "600", env=env, timeout=60)
    assert result.returncode == 1
    assert f'database "never_created" does not exist at 127.0.0.1:{postgres.port}' in (
        messages(result.stderr)
    )
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_installed_package_migrates_from_any_directory(
    fresh_database: str, postgres: LocalPostgres, tmp_path: Path
) -> None:
    """The wheel alone (no checkout, no alembic.ini) carries its migrations."""
    wheel_dir, target, elsewhere = tmp_path / "dist", tmp_path / "site", tmp_path / "empty"
    elsewhere.mkdir()
    poetry = ROOT / ".cache" / "poetry" / "bin" / "poetry"
    built = subprocess.run(
        [str(poetry), "build", "--format", "wheel", "--output", str(wheel_dir)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = wheel_dir.glob("*.whl")
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target)]
    installed = subprocess.run([*pip, str(wheel)], capture_output=True, text=True, check=False)
    assert installed.returncode == 0, installed.stderr
    # The wheel's copy comes first on the path: the checkout's src/ is not importable here.
    env = service_env(fresh_database, PYTHONPATH=str(target), PYTHONSAFEPATH="1")
    which = [sys.executable, "-c", "import post_service; print(post_service.__file__)"]
    origin = subprocess.run(which, env=env, cwd=elsewhere, capture_output=True, text=True)
    assert origin.stdout.startswith(str(target)), origin.stdout + origin.stderr
    migrate = [sys.executable, "-m", "post_service", "migrate"]
    result = subprocess.run(migrate, env=env, cwd=elsewhere, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    database = fresh_database.rsplit("/", 1)[1]
    assert postgres.psql("SELECT version_num FROM alembic_version", database=database) == (
        head_revision()
    )


def messages(json_log: str) -> str:
    """The message of every JSON log line, one per line."""
    return "\n".join(json.loads(line)["message"] for line in json_log.splitlines())
