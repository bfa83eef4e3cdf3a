"""The bench's peers workload, on a few jobs, so the harness cannot rot unnoticed.

Every system (arq, SAQ, dramatiq, procrastinate, ours, and the job with no queue) runs
50 jobs as real worker processes on the bench's own scratch database and Redis db, with
the exactly-once check the bench makes on every run; and that check fails on a job lost
or run twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import asyncpg
import pytest
import uvloop

from bench.context import Bench, Sizes, open_bench
from bench.peers import PeersMissing, require
from bench.services import BenchServices, bench_services, truncate_tables

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]
T = TypeVar("T")
JOBS = 50


@pytest.fixture(scope="module")
def services() -> Iterator[BenchServices]:
    try:
        require()
    except PeersMissing as missing:  # the test command installs it (dev includes bench)
        pytest.fail(str(missing))
    with bench_services() as started:
        yield started


def on_bench(services: BenchServices, use: Callable[[Bench], Awaitable[T]]) -> T:
    async def main() -> T:
        async with open_bench(services, Sizes.quick(), runs=1) as bench:
            return await use(bench)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


def test_every_system_runs_every_job_exactly_once(services):
    from bench.peers.systems import systems
    from bench.peers.workload import peers

    rows = on_bench(services, lambda bench: peers(bench, count=JOBS))

    labels = [f"peers: {system.label}" for system in systems()]
    assert [row.workload for row in rows] == labels
    assert all(len(row.values) == 1 and row.values[0] > 0 for row in rows)
    assert [row.verdict for row in rows] == ["met"] * len(labels), [row.note for row in rows]
    assert all("ours " in row.baseline for row in rows if "ours," not in row.workload)


async def _rows(bench: Bench, statements: list[str]) -> None:
    await truncate_tables(bench.services)
    run_id = await bench.new_run()
    connection = await asyncpg.connect(bench.services.dsn)
    try:
        for statement in statements:
            await connection.execute(statement.format(run=run_id))
    finally:
        await connection.close()
    from bench.peers.runs import check_exactly_once
    from bench.peers.systems import systems

    await check_exactly_once(bench, systems()[0], run_id, count=3, warm_up=0)


INSERT = (
    "INSERT INTO metrics (run_id, name, step, value) VALUES ({run}, 'loss', %d, 1) "
    "ON CONFLICT DO NOTHING"
)


def test_the_check_passes_each_job_once(services):
    on_bench(services, lambda bench: _rows(bench, [INSERT % step for step in range(3)]))


@pytest.mark.parametrize(
    ("steps", "problem"),
    [((0, 1), "not exactly once"), ((0, 1, 1, 2), "1 of 3 jobs ran twice"), ((0, 1, 2, 3), "not")],
)
def test_the_check_fails_on_a_job_lost_or_repeated(services, steps, problem):
    from bench.peers.runs import NotExactlyOnce

    statements = [INSERT % step for step in steps]
    with pytest.raises(NotExactlyOnce, match=problem):
        on_bench(services, lambda bench: _rows(bench, statements))


def test_bench_peers_picks_systems_and_names_the_known_ones(services):
    from bench.peers import NotRunnable
    from bench.peers.workload import chosen

    assert [system.key for system in chosen("ours, arq")] == ["arq", "ours"]
    with pytest.raises(NotRunnable, match=r"unknown celery \(known: direct, arq, saq, dramatiq"):
        chosen("arq,celery")
