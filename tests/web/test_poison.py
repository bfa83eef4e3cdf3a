"""No Redis entry stops a worker or the console (issue 18, finding 4).

Every poison shape of ``tests.support.poison`` is planted between good jobs on the suite's
Redis. The console answers every page with all of them present; then two real workers
(``ClaimingWorker``, in this process, as ``dbjobs worker`` runs it) drain the queue: every
good job runs, every bad entry is quarantined once or failed once and recorded in the job
history, and the console shows the quarantine.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss, job_key_prefix
from arq.jobs import Job
from arq.utils import timestamp_ms
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.fleet import rows, start_a_run, wait_for
from tests.support.poison import QUARANTINED, REFUSED, plant_poison
from worker.bootstrap import open_pool, services_of, this_worker_id
from worker.ops.workers import index_key, worker_key
from worker.quarantine import DAMAGED_SUFFIX, quarantine_key, read_quarantine, shown
from worker.runtime.delivery import REFUSED as REFUSED_FUNCTION
from worker.runtime.outbox import OUTBOX_KEY, drain_outbox
from worker.runtime.prometheus import JOBS
from worker.runtime.prometheus import QUARANTINED as QUARANTINED_TOTAL
from worker.settings import Settings
from worker.testing.inprocess import in_process_worker, running

PAGES = ["/", "/fragments/overview", "/workers", "/fragments/workers"]
API = ["/api/queue", "/api/workers", "/metrics"]
DRAIN_SECONDS = 60


@pytest.fixture
async def pool(settings: Settings) -> Any:
    pool = await open_pool(settings)  # JSON both ways, as every producer of ours
    yield pool
    await pool.aclose()


async def plant_everything(pool: ArqRedis, settings: Settings, run_id: int) -> list[Job]:
    async def good(step: int) -> Job:
        payload = {"run_id": run_id, "name": "good", "step": step, "value": step / 2}
        job = await pool.enqueue_job("record_metric", payload)
        assert job is not None
        return job

    return await plant_poison(pool, settings.queue_name, good)


async def plant_heartbeat_junk(pool: ArqRedis, queue_name: str) -> None:
    """What no worker writes to the roster: an id that is not UTF-8, a beat from the far
    future, a beat key of another type, a beat that is not JSON, a lease out of range."""
    index = index_key(queue_name)
    await pool.zadd(index, {b"\xff-worker": 1, "future:1": 2**62, "hash:1": 1, "junk:1": 1})
    await pool.hset(worker_key(queue_name, "hash:1"), "state", "ready")
    await pool.set(worker_key(queue_name, "junk:1"), b"\x80not a beat")
    await pool.set("arq:in-progress:hash-job", "lease 99999999999999999999 someone")


async def answers(api: Any, paths: list[str]) -> dict[str, int]:
    return {path: (await api.get(path)).status_code for path in paths}


async def test_the_console_answers_every_page_with_every_poison_entry_present(
    api, pool, settings, session_factory
):
    run_id = await start_a_run(session_factory)
    await plant_everything(pool, settings, run_id)
    await plant_heartbeat_junk(pool, settings.queue_name)

    assert await answers(api, PAGES + API) == dict.fromkeys(PAGES + API, 200)
    queue = (await api.get("/api/queue")).json()
    # Not UTF-8 or a NUL (2), a job or a claim of the wrong type (2): counted, not listed.
    assert queue["unreadable"] == 4
    shapes = len(QUARANTINED) + len(REFUSED)
    assert queue["total"] == 2 * shapes + 1  # each shape between two good jobs
    assert queue["quarantined"] == 0
    workers = (await api.get("/api/workers")).json()
    # Nothing there is a live worker's beat: index entries without one read as lost (as
    # `jobs health` lists them), to be dismissed; the id that is not UTF-8 is skipped.
    listed = {worker["worker_id"]: worker["state"] for worker in workers}
    assert listed == {"future:1": "lost", "hash:1": "lost"}
    metrics = (await api.get("/metrics")).text
    assert "dbjobs_quarantine_entries 0.0" in metrics


async def test_workers_quarantine_poison_once_and_serve_every_good_job_around_it(
    api, pool, settings, session_factory
):
    run_id = await start_a_run(session_factory)
    good = await plant_everything(pool, settings, run_id)
    quarantined_before = _quarantined_counts()
    refused_before = JOBS.labels(REFUSED_FUNCTION, "failed")._value.get()

    # Two workers at once: an entry both meet is still quarantined (and recorded) once. A
    # claim of the wrong type is found by the lease keeper, every third of a lease.
    quick = settings.model_copy(update={"lease_seconds": 2})
    workers = [
        in_process_worker(quick, await open_pool(quick), burst=True, poll_delay=0.01)
        for _ in range(2)
    ]
    async with running(workers[0]) as first, running(workers[1]) as second:
        await asyncio.wait({first.task, second.task}, timeout=DRAIN_SECONDS)
        assert first.task.result() is second.task.result() is None  # both ran to the end

    assert [(await job.result(timeout=5))["inserted"] for job in good] == [1] * len(good)
    assert await pool.zcard(settings.queue_name) == 0
    view = await read_quarantine(pool, settings.queue_name, limit=100)
    records = {record.entry: record for record in view.latest}
    assert len(view.latest) == view.total == len(QUARANTINED)
    assert set(records) == {shown(shape.entry) for shape in QUARANTINED}
    for shape in QUARANTINED:
        record = records[shown(shape.entry)]
        assert (record.reason, record.worker) == (shape.reason, this_worker_id())
        assert shape.says in record.detail, record
        assert record.entry_hex == (shape.entry.hex() if shape.reason == "bad_id" else "")
    for shape in QUARANTINED:  # its keys went with it
        assert not await pool.exists(job_key_prefix.encode() + shape.entry)
    gained = {k: v - quarantined_before[k] for k, v in _quarantined_counts().items()}
    assert gained == {"bad_id": 2, "wrong_type": 3, "shared_key": 0}
    refused_now = JOBS.labels(REFUSED_FUNCTION, "failed")._value.get()
    assert refused_now - refused_before == sum(1 for r in REFUSED if _refused_unrun(r))
    await _assert_recorded_once(session_factory)

    queue = (await api.get("/api/queue")).json()
    assert (queue["quarantined"], queue["unreadable"], queue["total"]) == (5, 0, 0)
    assert {entry["reason"] for entry in queue["quarantine"]} == {"bad_id", "wrong_type"}
    overview = (await api.get("/")).text
    assert 'id="quarantine"' in overview
    assert "\\xff\\xfe-not-utf8" in overview
    assert "dbjobs_quarantine_entries 5.0" in (await api.get("/metrics")).text


async def test_shared_keys_of_the_wrong_type_are_moved_aside_and_the_worker_serves(
    api, pool, settings, session_factory
):
    """The queue itself, arq's abort set, the workers' index, the quarantine and the history
    outbox, each written over with another type of value."""
    queue_name = settings.queue_name
    await pool.set(queue_name, "not a queue")
    await pool.set(abort_jobs_ss, "not a set")
    await pool.set(index_key(queue_name), "not an index")
    await pool.hset(quarantine_key(queue_name), "not", "a list")
    await pool.hset(OUTBOX_KEY, "not", "a list")
    assert await answers(api, PAGES + API) == dict.fromkeys(PAGES + API, 200)
    assert (await api.get("/api/queue")).json()["unreadable"] == 1

    worker = in_process_worker(settings, await open_pool(settings), poll_delay=0.01)
    async with running(worker) as run:
        await wait_for(lambda: _holds(pool, queue_name, "none", "zset"), within=10, what="repair")
        job = await pool.enqueue_job("create_profile", _profile())
        assert job is not None
        assert (await run.result(job, 20))["username"] == "grace"
        assert await drain_outbox(services_of(run.worker.ctx)) == 0

    moved = {record.entry for record in (await read_quarantine(pool, queue_name, 100)).latest}
    damaged = [queue_name, abort_jobs_ss, index_key(queue_name), quarantine_key(queue_name)]
    assert moved == {*damaged, OUTBOX_KEY}
    for key, kind in zip([*damaged, OUTBOX_KEY], [b"string"] * 3 + [b"hash"] * 2, strict=True):
        assert await pool.type(key + DAMAGED_SUFFIX) == kind, key
    assert await answers(api, PAGES + API) == dict.fromkeys(PAGES + API, 200)


async def test_an_abort_request_whose_id_is_not_text_is_quarantined(pool, settings):
    """arq decodes each abort request's id, when workers act on them."""
    aborting = settings.model_copy(update={"abort_running_jobs": True})
    now = timestamp_ms()  # requests older than arq's abort_job_max_age are dropped unread
    await pool.zadd(abort_jobs_ss, {b"\xff-abort": now, "fine": now, "stale": 1})
    worker = in_process_worker(aborting, await open_pool(aborting), poll_delay=0.01)
    async with running(worker) as run:
        job = await pool.enqueue_job("create_profile", _profile())
        assert job is not None
        assert (await run.result(job, 20))["username"] == "grace"

    assert await pool.zrange(abort_jobs_ss, 0, -1) == [b"fine"]
    [record] = (await read_quarantine(pool, settings.queue_name)).latest
    assert (record.entry, record.reason) == ("\\xff-abort", "bad_id")
    assert record.detail == "an abort request in arq:abort: its id is not UTF-8 text"


async def _holds(pool: ArqRedis, key: str, *kinds: str) -> bool:
    return (await pool.type(key)).decode() in kinds


def _profile() -> dict[str, str]:
    return {"username": "grace", "email": "grace@example.com", "full_name": "Grace Hopper"}


def _quarantined_counts() -> dict[str, float]:
    reasons = ("bad_id", "wrong_type", "shared_key")
    return {reason: QUARANTINED_TOTAL.labels(reason)._value.get() for reason in reasons}


def _refused_unrun(shape: Any) -> bool:
    """Whether the worker refused the job in its function's stead (none it could run)."""
    from worker.registry import JOBS as REGISTRY

    return shape.function not in REGISTRY


async def _assert_recorded_once(factory: async_sessionmaker[AsyncSession]) -> None:
    recorded = {
        job_id: (function, status, tries, error_type, message, retryable)
        for job_id, function, status, tries, error_type, message, retryable in await rows(
            factory,
            "SELECT job_id, function, status, tries, error_type, error_message, retryable "
            "FROM job_records WHERE function <> 'record_metric' OR status <> 'succeeded'",
        )
    }
    assert set(recorded) == {shape.job_id for shape in REFUSED}
    for shape in REFUSED:
        function, status, tries, error_type, message, retryable = recorded[shape.job_id]
        assert (function, status, tries, error_type) == (
            shape.function,
            "failed",
            1,
            "InvalidPayload",
        ), shape.job_id
        assert shape.says in message, (shape.job_id, message)
        assert retryable is False
