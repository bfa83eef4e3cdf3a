"""Private PostgreSQL and Redis server processes on free ports, for tests that break them.

The shared services are never stopped or restarted by a test: a test that needs an outage
starts its own server here (from the local binaries, in a temporary directory of its own)
and the context managers always stop it and remove its files, even when the test fails.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

PG_BIN = Path(os.environ.get("TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PG_SYSTEM_USER = "postgres"  # PostgreSQL refuses to run as root


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until(
    predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout}s")


# --- Redis -----------------------------------------------------------------------------


@dataclass
class RedisServer:
    """``redis-server`` with an append-only file fsynced on every write, in its own dir."""

    directory: Path
    port: int = field(default_factory=free_port)
    password: str | None = None
    options: list[str] = field(default_factory=list)  # more of redis-server's arguments
    process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def start(self) -> None:
        command = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        if self.password:
            command += ["--requirepass", self.password]
        command += self.options
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        wait_until(self._answers, timeout=15, what=f"redis-server on port {self.port}")

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited:\n{self.log_path.read_text(errors='replace')}")
        client = redis.Redis(port=self.port, password=self.password, socket_connect_timeout=0.2)
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """A crash: SIGKILL, no chance to write anything more."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def freeze(self) -> None:
        """A hang: the server keeps its connections open and answers nothing (SIGSTOP)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def _end(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a frozen server cannot act on a signal
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None


@contextmanager
def redis_server(password: str | None = None) -> Iterator[RedisServer]:
    directory = Path(tempfile.mkdtemp(prefix="dbjobs-redis-"))
    server = RedisServer(directory, password=password)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)


# --- PostgreSQL ------------------------------------------------------------------------


def _as_postgres_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", PG_SYSTEM_USER, "--", *command]


@dataclass
class PostgresServer:
    """A throwaway cluster (trust auth, user ``postgres``) that a test may stop and restart."""

    directory: Path
    port: int = field(default_factory=free_port)

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        return self.directory / "postgres.log"

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def database_url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        data = str(self.data_dir)
        self._run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        data, log = str(self.data_dir), str(self.log_path)
        self._run("pg_ctl", "start", "-w", "-t", "30", "-D", data, "-l", log, "-o", options)

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session with admin_shutdown (57P01), as a restart does."""
        self._run("pg_ctl", "stop", "-w", "-t", "30", "-m", mode, "-D", str(self.data_dir))

    def running(self) -> bool:
        command = _as_postgres_user([str(PG_BIN / "pg_ctl"), "status", "-D", str(self.data_dir)])
        return subprocess.run(command, capture_output=True, check=False).returncode == 0

    def create_database(self, name: str) -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def _run(self, tool: str, *args: str) -> None:
        command = _as_postgres_user([str(PG_BIN / tool), *args])
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed:\n{done.stdout}\n{done.stderr}")


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    directory = Path(tempfile.mkdtemp(prefix="dbjobs-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam(PG_SYSTEM_USER)
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    server = PostgresServer(directory)
    try:
        server.init()
        server.start()
        yield server
    finally:
        if server.data_dir.exists() and server.running():
            server.stop(mode="immediate")
        shutil.rmtree(directory, ignore_errors=True)
