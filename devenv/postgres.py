"""A throwaway PostgreSQL cluster on a free loopback port, for `make run` and the tests.

Installs Debian's `postgresql` package when its binaries are missing. The cluster
lives in a temporary directory; `stop()` and `start()` keep its data (fault tests
stop the database and bring it back), `close()` removes it.

Replication, for failover tests: `primary.create_standby()` copies a running cluster with
`pg_basebackup` into a second one that streams its WAL (synchronously by default: the
primary then answers a COMMIT only once the standby has flushed it), `standby.promote()`
makes that one a primary (`pg_ctl promote`), and `standby.cut_off()` / `reconnect()` stop
and resume the stream as a broken network between the two would.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devenv.apt import apt_install
from devenv.lifecycle import LocalServer, free_port, removed_on_failure

USER = "post"
PASSWORD = "local-dev-password"  # noqa: S105 - a throwaway loopback-only cluster
DATABASE = "post_db"


def find_postgres_bin() -> Path:
    """The newest installed PostgreSQL's bin directory, installing the package if needed."""
    found = _installed_bin_dirs()
    if not found:
        apt_install("postgresql", why="postgres")
        found = _installed_bin_dirs()
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found after installing `postgresql`")
    return found[-1]


def _installed_bin_dirs() -> list[Path]:
    dirs = [Path(d) for d in glob.glob("/usr/lib/postgresql/*/bin") if Path(d, "postgres").exists()]
    return sorted(dirs, key=lambda d: int(d.parent.name))


def read_write_url(*clusters: LocalPostgres, database: str = DATABASE) -> str:
    """A DB_URL naming every cluster given, of which the client uses whichever is the primary:
    several ``host=`` parameters with ``target_session_attrs=read-write``."""
    hosts = "&".join(f"host=127.0.0.1:{cluster.port}" for cluster in clusters)
    return (
        f"postgresql+asyncpg://{USER}:{PASSWORD}@/{database}?{hosts}"
        "&target_session_attrs=read-write"
    )


class LocalPostgres(LocalServer):
    def __init__(
        self, port: int | None = None, *, standby_of: LocalPostgres | None = None, name: str = ""
    ) -> None:
        """A new cluster (initdb), or with ``standby_of`` a streaming copy of that running one,
        named ``name`` (its application_name in the primary's pg_stat_replication)."""
        self.bin = find_postgres_bin()
        self.port = port or free_port()
        self.name = name or ("standby" if standby_of else "primary")
        self.dir = Path(tempfile.mkdtemp(prefix="post-service-pg-"))
        self.data = self.dir / "data"
        self._as_postgres = os.geteuid() == 0  # initdb and postgres refuse to run as root
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._primary_conninfo = ""
        with removed_on_failure(self.dir):
            if standby_of is None:
                self._initdb()
            else:
                self._base_backup(standby_of)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    def dsn(self, database: str = DATABASE) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def _initdb(self) -> None:
        password_file = self.dir / "pwfile"
        password_file.write_text(PASSWORD)
        if self._as_postgres:
            shutil.chown(password_file, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "--pwfile",
            str(password_file), "-A", "scram-sha-256", "-E", "UTF8", "--locale", "C.UTF-8",
            "--no-sync",
        )  # fmt: skip
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.dir}'",
            "fsync": "off",  # throwaway data: survives a server crash, not an OS crash
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "128MB",
        }
        self._configure(settings)

    def _configure(self, settings: dict[str, str]) -> None:
        with (self.data / "postgresql.conf").open("a") as conf:  # later lines win
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    # --- streaming replication ------------------------------------------------------------

    def _base_backup(self, primary: LocalPostgres) -> None:
        """Copy the running ``primary`` and configure the copy as its hot standby."""
        self._run(
            str(self.bin / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
            "-U", USER, "-D", str(self.data), "--wal-method=stream", "--checkpoint=fast",
            "--no-sync",
        )  # fmt: skip
        self._primary_conninfo = (
            f"host=127.0.0.1 port={primary.port} user={USER} password={PASSWORD} "
            f"application_name={self.name}"
        )
        self._configure(
            {
                "port": str(self.port),
                "unix_socket_directories": f"'{self.dir}'",
                "cluster_name": f"'{self.name}'",
                "primary_conninfo": f"'{self._primary_conninfo}'",
            }
        )
        signal_file = self.data / "standby.signal"  # "start in standby mode"
        signal_file.touch()
        if self._as_postgres:
            shutil.chown(signal_file, "postgres", "postgres")

    def create_standby(self, synchronous: bool = True, name: str = "standby") -> LocalPostgres:
        """A hot standby of this running cluster, started and streaming.

        ``synchronous``: this cluster lists it in ``synchronous_standby_names``, so with the
        default ``synchronous_commit = on`` a COMMIT is answered only after the standby has
        flushed its WAL. Otherwise commits are answered at once and the standby follows a
        little behind: what it has not received yet is lost if this cluster is lost.
        """
        standby = LocalPostgres(standby_of=self, name=name)
        try:
            standby.start()
            self._wait_for_standby(name, "streaming")
            self.psql(
                f"ALTER SYSTEM SET synchronous_standby_names = '{name if synchronous else ''}'"
            )
            self.psql("SELECT pg_reload_conf()")
            self._wait_for_standby(name, "sync" if synchronous else "async")
        except BaseException:
            standby.close()
            raise
        return standby

    def _wait_for_standby(self, name: str, state: str, timeout: float = 30.0) -> None:
        """Until ``name`` is in pg_stat_replication with that state or sync_state."""
        query = (
            "SELECT state || ' ' || sync_state FROM pg_stat_replication "  # noqa: S608 - ours
            f"WHERE application_name = '{name}'"
        )
        deadline = time.monotonic() + timeout
        while state not in self.psql(query, database="postgres").split():
            if time.monotonic() > deadline:
                raise RuntimeError(f"standby {name!r} not {state} after {timeout:g} s")
            time.sleep(0.1)

    def in_recovery(self) -> bool:
        """True while this cluster is a standby."""
        return self.psql("SELECT pg_is_in_recovery()", database="postgres") == "t"

    def promote(self) -> None:
        """Make this standby a primary; returns once it accepts writes."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "promote")

    def cut_off(self) -> None:
        """Stop receiving WAL from the primary, as a network failure between them would (the
        standby keeps serving reads of what it has); ``reconnect()`` resumes."""
        self._set_primary_conninfo("")

    def reconnect(self) -> None:
        self._set_primary_conninfo(self._primary_conninfo)

    def _set_primary_conninfo(self, conninfo: str) -> None:
        # Reloadable since PostgreSQL 13: the WAL receiver restarts with the new value.
        self.psql(f"ALTER SYSTEM SET primary_conninfo = '{conninfo}'", database="postgres")
        self.psql("SELECT pg_reload_conf()", database="postgres")

    def receiving_wal(self) -> bool:
        """Whether a WAL receiver is connected to the primary right now."""
        query = "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'"
        return self.psql(query, database="postgres") == "1"

    # --- running --------------------------------------------------------------------------

    def start(self) -> LocalPostgres:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"),
                  "-w", "-t", "60", "start")  # fmt: skip
        self._ensure_database()
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash or a lost node would."""
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
            time.sleep(0.2)

    def close(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, sql: str, database: str = DATABASE) -> str:
        result = self._run(str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                           "-U", USER, "-d", database, "-tAc", sql)  # fmt: skip
        return result.strip()

    def create_database(self, name: str, template: str = "template1") -> str:
        """A new database, a copy of ``template`` (PostgreSQL copies it file by file)."""
        self.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"', database="postgres")
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def _ensure_database(self) -> None:
        exists = self.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'",  # noqa: S608 - a constant
            "postgres",
        )
        if exists != "1":
            self.psql(f'CREATE DATABASE "{DATABASE}"', database="postgres")

    def _run(self, *command: str) -> str:
        env = {**os.environ, "PGPASSWORD": PASSWORD, "LC_ALL": "C.UTF-8"}
        if self._as_postgres:
            command = ("runuser", "-u", "postgres", "--", *command)
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, check=False, cwd=self.dir
        )
        if result.returncode != 0:
            log = self.dir / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{command[-1]!r} failed: {result.stderr.strip()}\n{tail}")
        return result.stdout


if __name__ == "__main__":
    with LocalPostgres() as pg:
        print(pg.url, flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            sys.exit(0)
