"""A Redis primary, its replica and three sentinels on loopback, for the failover tests.

Every process runs from the local ``redis-server`` in a temporary directory of the test's
own, on free ports, and is ended when the test ends. The sentinels give up on a silent
primary after ``DOWN_AFTER_MS`` (a second: short enough for a test, long enough that a
loaded machine does not fail over by mistake) and elect the replica in its place.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.support.servers import REDIS_SERVER, RedisServer, free_port, wait_until
from worker.environment import SENTINEL_SCHEME

MASTER = "dbjobs"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000
# A replica's first copy is sent at once, not after the default 5 s wait for more replicas.
QUICK_SYNC = ("--repl-diskless-sync-delay", "0")


@dataclass
class Sentinel:
    directory: Path
    primary_port: int
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        config = self.directory / "sentinel.conf"  # a sentinel rewrites its own file
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n"
            f"logfile {self.directory / 'sentinel.log'}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.primary_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
        )
        self.process = subprocess.Popen(
            [REDIS_SERVER, str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=1, decode_responses=True)

    def master_state(self) -> dict[str, str] | None:
        try:
            with self.client() as client:
                state: dict[str, str] = client.sentinel_master(MASTER)
                return state
        except redis.RedisError:
            return None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=15)


@dataclass
class SentinelGroup:
    primary: RedisServer
    replica: RedisServer
    sentinels: list[Sentinel]

    def url(self, db: int = 0) -> str:
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
        return f"{SENTINEL_SCHEME}://{hosts}/{MASTER}/{db}"

    def primary_port(self) -> int | None:
        """The primary's port, as the first sentinel that answers names it."""
        for sentinel in self.sentinels:
            state = sentinel.master_state()
            if state is not None:
                return int(state["port"])
        return None

    def wait_until_watched(self) -> None:
        """Every sentinel knows the replica and the two other sentinels: a failover can
        reach its quorum and has someone to promote."""

        def watched() -> bool:
            states = [sentinel.master_state() for sentinel in self.sentinels]
            return all(
                state is not None
                and int(state["num-slaves"]) == 1
                and int(state["num-other-sentinels"]) == len(self.sentinels) - 1
                for state in states
            )

        wait_until(watched, timeout=30, what="sentinels watching primary and replica")

    def wait_for_failover(self, *, timeout: float = 30) -> None:
        """Until every sentinel names the replica as the primary, and the replica says so."""

        def promoted() -> bool:
            ports = {
                int(state["port"]) if state else None
                for state in (sentinel.master_state() for sentinel in self.sentinels)
            }
            if ports != {self.replica.port}:
                return False
            with redis.Redis(port=self.replica.port, socket_timeout=1) as client:
                return client.info("replication")["role"] == "master"

        wait_until(promoted, timeout=timeout, what="the replica promoted", interval=0.1)

    def rejoin_as_replica(self) -> None:
        """The old primary back, as a replica of the new one (what an operator, or the
        sentinels themselves a little later, would make of it)."""
        self.primary.options = [*QUICK_SYNC, "--replicaof", "127.0.0.1", str(self.replica.port)]
        self.primary.start()


def replica_in_sync(replica: RedisServer) -> bool:
    with redis.Redis(port=replica.port, socket_timeout=1) as client:
        return client.info("replication").get("master_link_status") == "up"


@contextmanager
def replicated_pair() -> Iterator[tuple[RedisServer, RedisServer]]:
    """A primary and its replica, the replica's first copy done."""
    with ExitStack() as stack:
        directory = Path(tempfile.mkdtemp(prefix="dbjobs-replicas-"))
        stack.callback(shutil.rmtree, directory, ignore_errors=True)
        servers: list[RedisServer] = []
        for name in ("primary", "replica"):
            (directory / name).mkdir()
            servers.append(RedisServer(directory / name, options=list(QUICK_SYNC)))
            stack.callback(servers[-1].kill)
        primary, replica = servers
        primary.start()
        replica.options += ["--replicaof", "127.0.0.1", str(primary.port)]
        replica.start()
        wait_until(lambda: replica_in_sync(replica), timeout=30, what="the replica in sync")
        yield primary, replica


@contextmanager
def sentinel_group() -> Iterator[SentinelGroup]:
    with ExitStack() as stack:
        primary, replica = stack.enter_context(replicated_pair())
        sentinels = []
        for number in range(3):
            directory = primary.directory.parent / f"sentinel{number}"
            directory.mkdir()
            sentinel = Sentinel(directory, primary.port)
            stack.callback(sentinel.stop)
            sentinel.start()
            sentinels.append(sentinel)
        group = SentinelGroup(primary, replica, sentinels)
        group.wait_until_watched()
        yield group
