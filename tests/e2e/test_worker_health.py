"""Each worker's own health: a stuck one and a stopping one are reported as such, while
the third stays healthy (arq's one --check key per queue would say all is well)."""

from __future__ import annotations

import asyncio
import json
import signal

import pytest

from tests.support.fleet import SLOW_WORKER_SETTINGS, slow_starts, wait_for
from tests.support.scrape import get
from tests.support.servers import free_port
from tests.support.slow_worker import BLOCK, NAME
from worker.testing.processes import WorkerProcess, run_cli

pytestmark = pytest.mark.e2e

BEAT_S = "0.5"  # a worker is lost after 1.5 s without a beat
STUCK_S = 30  # how long the stuck worker's loop is blocked (it is killed before)
GRACE_S = "30"  # the stopping worker stays so until the test ends (then it is killed)


async def probe(port: int, path: str) -> tuple[int, str]:
    return await asyncio.to_thread(get, port, path)


async def test_a_stuck_and_a_stopping_worker_are_told_apart_from_a_healthy_one(
    workers, pool, env, run_id
):
    ports: dict[int, int] = {}

    def start() -> WorkerProcess:
        port = free_port()
        worker = workers.start(
            SLOW_WORKER_SETTINGS,
            JOBS_METRICS_PORT=str(port),
            JOBS_HEARTBEAT_SECONDS=BEAT_S,
            JOBS_SHUTDOWN_GRACE=GRACE_S,
        )
        ports[worker.pid] = port
        return worker

    stuck = start()
    assert await pool.enqueue_job(BLOCK, STUCK_S, _job_id="block") is not None
    await wait_for(lambda: _starts(pool, 1), within=20, what="the stuck worker's job started")
    stopping, healthy = start(), start()  # the stuck one polls no more: they take the next
    point = {"run_id": run_id, "name": "loss", "step": 1, "value": 1.0, "seconds": 600}
    assert await pool.enqueue_job(NAME, point, _job_id="long") is not None
    await wait_for(lambda: _starts(pool, 2), within=20, what="the long job started")
    if (await slow_starts(pool))[1][1] != stopping.pid:
        stopping, healthy = healthy, stopping
    stopping.signal(signal.SIGTERM)  # the long job holds it for its grace

    async def stuck_is_reported() -> bool:
        return (await probe(ports[stuck.pid], "/healthz"))[0] == 503

    async def stopping_is_reported() -> bool:
        return await probe(ports[stopping.pid], "/readyz") == (503, "stopping\n")

    await wait_for(stopping_is_reported, within=5, what="the stopping worker is not ready")
    await wait_for(stuck_is_reported, within=5, what="the stuck worker's liveness fails")
    assert await probe(ports[stopping.pid], "/healthz") == (200, "alive\n")
    assert await probe(ports[healthy.pid], "/healthz") == (200, "alive\n")
    assert await probe(ports[healthy.pid], "/readyz") == (200, "ready\n")
    status, reason = await probe(ports[stuck.pid], "/readyz")
    assert status == 503
    assert reason.startswith("the event loop has not run for ")

    listed = await asyncio.to_thread(run_cli, ["health", "--json"], env)
    states = {row["worker_id"].rsplit(":", 1)[1]: row["state"] for row in _workers(listed)}
    assert states == {
        str(stuck.pid): "lost",
        str(stopping.pid): "stopping",
        str(healthy.pid): "ready",
    }
    assert listed.returncode == 1  # not every worker is ready
    local = {**env, "JOBS_METRICS_PORT": str(ports[healthy.pid])}
    answer = await asyncio.to_thread(run_cli, ["health", "--local"], local)
    assert (answer.returncode, answer.stdout.strip()) == (0, "ready: ready")


async def _starts(pool, count: int) -> bool:
    return len(await slow_starts(pool)) >= count


def _workers(listed) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = json.loads(listed.stdout)["workers"]
    return rows
