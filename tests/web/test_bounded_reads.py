"""Every read bounded: run_ids × buckets capped, heavy reads on a budget of their own that
light reads never wait for, and a console out of connections, slots or time answering 503
with Retry-After (one warning line, no traceback). Heavy reads are held by a real lock on
the metrics table, never by timing."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.metric_queries import MAX_HISTORY_BUCKETS, MetricHistoryQuery
from tests.support.db import MakeUow, add_experiment, add_profile, add_run
from tests.support.rows import store_points
from tests.web.conftest import client_of, console_settings, metrics_locked, until
from worker.web.app import create_app
from worker.web.budget import WAITING_PER_SLOT

SLOTS = 2


@pytest.fixture
async def runs(uow_factory: MakeUow, session_factory) -> list[int]:
    owner = await add_profile(uow_factory)
    experiment = await add_experiment(uow_factory, owner.id)
    ids = [(await add_run(uow_factory, experiment.id)).id for _ in range(3)]
    for run_id in ids:
        await store_points(session_factory, run_id, {step: step / 10 for step in range(20)}, "loss")
    return ids


def history(run_ids: list[int], **params: object) -> tuple[str, dict[str, object]]:
    return "/api/metrics/history", {"name": "loss", "run_ids": run_ids, **params}


@asynccontextmanager
async def console(pg_database: str, redis_url: str, **settings: object):
    app = create_app(console_settings(pg_database, redis_url, **settings))
    async with client_of(app) as client:
        yield client, app.state


async def hold_every_connection(engine: AsyncEngine, held: AsyncExitStack) -> None:
    """Connections checked out of the pool until it refuses one: all it may open."""
    try:
        while True:
            await held.enter_async_context(engine.connect())
    except PoolTimeout:
        return


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "worker.web" and r.levelno >= logging.WARNING]


async def test_more_buckets_than_one_read_may_return_are_refused_naming_both(api, runs):
    path, params = history(runs, buckets=10_000)
    refused = await api.get(path, params=params)
    assert refused.status_code == 422
    limit = MAX_HISTORY_BUCKETS // 3
    assert refused.json()["error"]["problems"] == [
        f"buckets: at most {limit:,} for 3 runs (run_ids × buckets is at most "
        f"{MAX_HISTORY_BUCKETS:,} in one read)"
    ]
    path, params = history(runs, buckets=limit)
    assert (await api.get(path, params=params)).status_code == 200


@pytest.mark.parametrize(("compared", "buckets"), [(1, 500), (40, 500), (41, 487), (100, 200)])
def test_without_buckets_many_runs_share_what_one_read_may_return(compared, buckets):
    query = MetricHistoryQuery(run_ids=list(range(1, compared + 1)), name="loss")
    assert query.buckets == buckets


async def test_a_light_read_answers_while_heavy_reads_hold_their_whole_budget(
    pg_database, clean_redis, emptied_pg_engine, runs
):
    settings = {"console_heavy_reads": SLOTS, "console_wait_seconds": 0.2}
    async with console(pg_database, clean_redis.url, **settings) as (api, state):
        budget = state.heavy_reads
        path, params = history(runs[:1], buckets=10)
        async with metrics_locked(emptied_pg_engine):
            held = [asyncio.create_task(api.get(path, params=params)) for _ in range(SLOTS)]
            await until(lambda: budget.running == SLOTS, "every heavy slot taken")
            busy = await api.get(path, params=params)
            busy_page = await api.get(f"/runs/{runs[0]}")
            light = [await api.get(p) for p in ("/api/queue", "/api/jobs", "/", "/experiments")]
            assert not any(task.done() for task in held)
        answered = [await task for task in held]
    assert (busy.status_code, busy.headers["Retry-After"]) == (503, "2")
    assert busy.json()["error"] == {
        "type": "unavailable",
        "message": "the console is busy: try again in a moment",
    }
    assert busy_page.status_code == 503
    assert [r.status_code for r in light] == [200, 200, 200, 200]
    assert [r.status_code for r in answered] == [200, 200]


async def test_beyond_the_waiting_line_a_heavy_read_is_refused_at_once(
    pg_database, clean_redis, emptied_pg_engine, runs
):
    settings = {"console_heavy_reads": 1, "console_wait_seconds": 60}
    async with console(pg_database, clean_redis.url, **settings) as (api, state):
        budget = state.heavy_reads
        path, params = history(runs[:1], buckets=10)
        async with metrics_locked(emptied_pg_engine):
            queued = [asyncio.create_task(api.get(path, params=params)) for _ in range(9)]
            await until(lambda: budget.waiting == WAITING_PER_SLOT, "the waiting line full")
            turned_away = await api.get(path, params=params)
        answered = [await task for task in queued]
    assert turned_away.status_code == 503
    assert [r.status_code for r in answered] == [200] * 9


async def test_no_connection_free_is_a_503_with_retry_after_and_one_warning(
    pg_database, clean_redis, emptied_pg_engine, runs, caplog
):
    async with console(pg_database, clean_redis.url, console_wait_seconds=0.1) as (api, state):
        async with AsyncExitStack() as held:
            await hold_every_connection(state.console.engine, held)
            caplog.clear()
            refused = [await api.get(p) for p in ("/api/jobs", "/api/failed", "/failed")]
        afterwards = await api.get("/api/jobs")
    assert [r.status_code for r in refused] == [503, 503, 503]
    assert {r.headers["Retry-After"] for r in refused} == {"2"}
    assert "the console is busy" in refused[2].text  # the dashboard's error page
    (warning,) = warnings_of(caplog)
    assert warning.getMessage() == ("GET /api/jobs: 503, no database connection free within 0.1 s")
    assert warning.exc_info is None
    assert afterwards.status_code == 200


async def test_a_read_past_the_statement_timeout_is_a_503_naming_the_limit(
    pg_database, clean_redis, emptied_pg_engine, runs, caplog
):
    settings = {"console_statement_timeout": 0.05}
    async with console(pg_database, clean_redis.url, **settings) as (api, _):
        path, params = history(runs, buckets=10)
        async with metrics_locked(emptied_pg_engine):
            caplog.clear()
            stopped = await api.get(path, params=params)
            run_page = await api.get(f"/api/runs/{runs[0]}")
        afterwards = await api.get(path, params=params)
    assert (stopped.status_code, stopped.headers["Retry-After"]) == (503, "2")
    assert stopped.json()["error"]["message"].startswith(
        "this read took longer than 0.05 s and was stopped: ask for less"
    )
    assert run_page.status_code == 503
    (warning,) = warnings_of(caplog)
    assert "a statement ran past the statement timeout (0.05 s)" in warning.getMessage()
    assert warning.exc_info is None
    assert afterwards.status_code == 200
