"""CPU seconds used by the workers, by PostgreSQL's backends of the bench database, and by
Redis: on two cores, which one runs out first is the whole story."""

from __future__ import annotations

import os
import resource
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from bench.context import Bench
from bench.processes import WorkerProcess

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    workers: float
    postgres: dict[int, float]
    redis: float

    def minus(self, before: CpuSample) -> CpuUse:
        database = sum(
            seconds - before.postgres.get(pid, 0.0) for pid, seconds in self.postgres.items()
        )
        return CpuUse(self.workers - before.workers, database, self.redis - before.redis)


@dataclass(frozen=True)
class CpuUse:
    workers: float
    postgres: float
    redis: float

    def per_unit_ms(self, units: int) -> str:
        """'worker 1.23, PG 0.80, Redis 0.20 ms/<unit>' style figures."""
        scale = 1000 / units
        return (
            f"CPU ms: worker {self.workers * scale:.2f}, PG {self.postgres * scale:.2f}, "
            f"Redis {self.redis * scale:.2f}"
        )


def process_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # the process ended meanwhile
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _backend_pids(bench: Bench) -> list[int]:
    connection = await asyncpg.connect(bench.services.dsn)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            bench.services.database,
        )
    finally:
        await connection.close()
    return [row["pid"] for row in rows]


async def _redis_pid(bench: Bench) -> int | None:
    info = await bench.pool.info("server")
    pid = info.get("process_id")
    return int(pid) if pid else None


def _is_local(url: str) -> bool:
    """Server pids mean something here only when the server runs on this machine."""
    return urlsplit(url).hostname in LOCAL_HOSTS


async def sample(bench: Bench, workers: Sequence[WorkerProcess] = ()) -> CpuSample:
    """Worker processes given, or this process when there are none (the in-process runs)."""
    redis_pid = await _redis_pid(bench) if _is_local(bench.services.redis_url) else None
    backends = await _backend_pids(bench) if _is_local(bench.services.dsn) else []
    return CpuSample(
        workers=sum(process_cpu_seconds(w.pid) for w in workers) if workers else own_cpu_seconds(),
        postgres={pid: process_cpu_seconds(pid) for pid in backends},
        redis=process_cpu_seconds(redis_pid) if redis_pid else 0.0,
    )
