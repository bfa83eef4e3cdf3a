"""``worker.runtime.leases.LeaseKeeper`` on real Redis: leases renewed, arq's orphaned claims
capped."""

from __future__ import annotations

import logging

import pytest
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from fakeredis import FakeServer
from fakeredis.aioredis import FakeRedis
from redis.exceptions import ResponseError

from worker.ops.queue_state import read_lease
from worker.quarantine import read_quarantine
from worker.runtime.leases import ARQ_CLAIM, LeaseKeeper

QUEUE = "test:leases"
LEASE_S = 8
ARQ_CLAIM_MS = 310_000  # what arq's start_jobs sets: the longest job timeout plus 10 s


@pytest.fixture
def keeper(redis: ArqRedis) -> LeaseKeeper:
    return LeaseKeeper(redis, QUEUE, LEASE_S, holder="host:42")


async def queue_job(redis: ArqRedis, job_id: str, *, due_in_ms: int = -1_000) -> None:
    await redis.zadd(QUEUE, {job_id: timestamp_ms() + due_in_ms})


async def claim(redis: ArqRedis, job_id: str, ttl_ms: int = ARQ_CLAIM_MS) -> None:
    """What arq's start_jobs does as it takes a job."""
    await redis.psetex(in_progress_key_prefix + job_id, ttl_ms, ARQ_CLAIM)


async def ttl_ms(redis: ArqRedis, job_id: str) -> int:
    return int(await redis.pttl(in_progress_key_prefix + job_id))


async def test_an_orphaned_claim_is_cut_to_one_lease(redis, keeper):
    await queue_job(redis, "orphan")
    await claim(redis, "orphan")

    assert await keeper.cap_claims() == 1
    assert 0 < await ttl_ms(redis, "orphan") <= LEASE_S * 1000


async def test_a_keeper_caps_while_it_holds_leases_or_held_jobs_wait(redis, keeper):
    """An idle worker's keeper sends nothing until its claim meets ready jobs something
    holds (``Claim.held``); one running jobs caps at each tick."""
    await queue_job(redis, "orphan")
    await claim(redis, "orphan")

    await keeper.tick()
    assert await ttl_ms(redis, "orphan") > LEASE_S * 1000

    keeper.head_held = True
    await keeper.tick()
    assert 0 < await ttl_ms(redis, "orphan") <= LEASE_S * 1000

    keeper.head_held = False
    keeper.acquire("running here")
    await claim(redis, "orphan")
    await keeper.tick()
    assert 0 < await ttl_ms(redis, "orphan") <= LEASE_S * 1000


async def test_entries_no_worker_wrote_do_not_stop_the_capping_of_the_others(redis, keeper):
    await redis.zadd(QUEUE, {b"\xff-not-utf8": timestamp_ms() - 2_000})
    await redis.psetex(in_progress_key_prefix.encode() + b"\xff-not-utf8", ARQ_CLAIM_MS, "1")
    await queue_job(redis, "a-list")
    await redis.rpush(in_progress_key_prefix + "a-list", "claimed?")
    await queue_job(redis, "orphan")
    await claim(redis, "orphan")

    assert await keeper.cap_claims() == 2  # the orphan and the one whose id is not text
    assert await ttl_ms(redis, "orphan") <= LEASE_S * 1000
    # A claim no worker wrote would hold its job for ever: the entry is quarantined, once.
    assert await keeper.cap_claims() == 0
    assert await redis.zscore(QUEUE, "a-list") is None
    [record] = (await read_quarantine(redis, QUEUE)).latest
    assert (record.entry, record.reason, record.worker) == ("a-list", "wrong_type", "host:42")
    assert record.detail == "arq:in-progress:a-list holds a list, not a claim"
    assert read_lease(b"lease 99999999999999999999 host:1") is None  # out of any date's range


async def test_leases_and_future_jobs_are_left_alone(redis, keeper):
    await queue_job(redis, "running")
    await claim(redis, "running")
    keeper.acquire("running")
    await keeper.lease_started()
    await queue_job(redis, "deferred", due_in_ms=60_000)
    await claim(redis, "deferred")

    assert await keeper.cap_claims() == 0
    assert 0 < await ttl_ms(redis, "running") <= LEASE_S * 1000
    assert await ttl_ms(redis, "deferred") > LEASE_S * 1000  # not on the ready head


async def test_a_shorter_lease_never_cuts_a_longer_one(redis, keeper):
    patient = LeaseKeeper(redis, QUEUE, 60)  # another worker, configured with a longer lease
    await queue_job(redis, "long")
    await claim(redis, "long")
    patient.acquire("long")
    await patient.lease_started()

    assert await keeper.cap_claims() == 0
    assert await ttl_ms(redis, "long") > 50_000


async def test_only_the_head_of_the_queue_is_looked_at(redis):
    shallow = LeaseKeeper(redis, QUEUE, LEASE_S, depth=2)
    for n in range(3):
        await queue_job(redis, f"job-{n}", due_in_ms=-3_000 + n)
        await claim(redis, f"job-{n}")

    assert await shallow.cap_claims() == 2
    assert await ttl_ms(redis, "job-2") > LEASE_S * 1000


async def test_a_started_job_is_leased_by_the_next_pipeline_unless_it_ended(redis, keeper):
    for job_id in ("short", "long"):
        await claim(redis, job_id)
        keeper.acquire(job_id)
    keeper.release("short")  # ended before the pipeline: arq deletes its key
    assert await ttl_ms(redis, "long") > LEASE_S * 1000  # still arq's claim

    await keeper.lease_started()
    assert 0 < await ttl_ms(redis, "long") <= LEASE_S * 1000
    lease = read_lease(await redis.get(in_progress_key_prefix + "long"))
    assert lease is not None
    assert lease[1] == "host:42"  # the console shows who runs it
    assert await ttl_ms(redis, "short") > LEASE_S * 1000  # never leased


async def test_renew_keeps_a_running_job_leased_until_it_is_released(redis, keeper):
    await claim(redis, "mine")
    keeper.acquire("mine")
    await keeper.lease_started()

    await redis.pexpire(in_progress_key_prefix + "mine", 1_000)  # as if time had passed
    await keeper.renew()
    assert await ttl_ms(redis, "mine") > 1_000

    keeper.release("mine")
    await redis.pexpire(in_progress_key_prefix + "mine", 1_000)
    await keeper.renew()
    assert await ttl_ms(redis, "mine") <= 1_000


async def test_a_lapsed_claim_or_lease_is_reported_not_revived(redis, keeper, caplog):
    caplog.set_level(logging.WARNING, logger="worker.leases")
    keeper.acquire("gone")  # its claim expired before the job started
    await keeper.lease_started()
    assert await ttl_ms(redis, "gone") == -2
    await keeper.renew()
    assert await ttl_ms(redis, "gone") == -2
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "job gone: its claim lapsed before it started; it may run twice",
        "job gone: its lease lapsed while it ran; it may run twice",
    ]


class WithoutScripting(FakeRedis):
    """A Redis that refuses scripts, as one built or configured without them does."""

    async def evalsha(self, *_args: object, **_kwargs: object) -> object:
        raise ResponseError("unknown command 'evalsha', with args beginning with: ")


async def test_a_redis_that_cannot_cap_is_reported_once(caplog):
    caplog.set_level(logging.WARNING, logger="worker.leases")
    redis = WithoutScripting(server=FakeServer())
    keeper = LeaseKeeper(redis, QUEUE, LEASE_S)
    await queue_job(redis, "orphan")
    await claim(redis, "orphan")
    keeper.acquire("a job running here")  # an idle keeper does not cap

    for _ in range(3):
        await keeper.tick()

    assert len(caplog.records) == 1
    assert "cannot be capped" in caplog.records[0].getMessage()
    await redis.aclose()
