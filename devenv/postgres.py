"""A throwaway PostgreSQL cluster on a free loopback port, for `make run` and the tests.

Installs Debian's `postgresql` package when its binaries are missing. The cluster
lives in a temporary directory; `stop()` and `start()` keep its data (fault tests
stop the database and bring it back), `close()` removes it.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

USER = "post"
PASSWORD = "local-dev-password"  # noqa: S105 - a throwaway loopback-only cluster
DATABASE = "post_db"


def find_postgres_bin() -> Path:
    """The newest installed PostgreSQL's bin directory, installing the package if needed."""
    found = _installed_bin_dirs()
    if not found:
        _apt_install("postgresql")
        found = _installed_bin_dirs()
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found after installing `postgresql`")
    return found[-1]


def _installed_bin_dirs() -> list[Path]:
    dirs = [Path(d) for d in glob.glob("/usr/lib/postgresql/*/bin") if Path(d, "postgres").exists()]
    return sorted(dirs, key=lambda d: int(d.parent.name))


def _apt_install(*packages: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    if subprocess.run(install, env=env, check=False, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPostgres:
    def __init__(self, port: int | None = None) -> None:
        self.bin = find_postgres_bin()
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="post-service-pg-"))
        self.data = self.dir / "data"
        self._as_postgres = os.geteuid() == 0  # initdb and postgres refuse to run as root
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._initdb()

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
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

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

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


if __name__ == "__main__":
    with LocalPostgres() as pg:
        print(pg.url, flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            sys.exit(0)
