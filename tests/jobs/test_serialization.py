"""JSON on the queue both ways; failures keep their type and message; bad bytes stay contained."""

from __future__ import annotations

import json

import pytest
from arq.constants import job_key_prefix
from arq.utils import timestamp_ms

from domain.models import Profile
from worker.serialization import JobError

PROFILE = {"username": "ada", "email": "ada@example.com", "full_name": "Ada L"}


async def test_jobs_and_results_are_plain_json_in_redis(harness):
    job = await harness.enqueue("create_profile", PROFILE)
    queued = json.loads(await harness.producer.get(job_key_prefix + job.job_id))
    assert (queued["f"], queued["a"], queued["k"]) == ("create_profile", [PROFILE], {})

    await harness.run()

    stored = json.loads(await harness.raw_result(job.job_id))
    assert stored["s"] is True
    assert stored["r"]["id"] == 1
    assert stored["r"]["username"] == "ada"
    assert stored["r"] == await job.result(timeout=1)


async def test_a_failed_job_comes_back_as_a_job_error_with_type_and_message(harness):
    job = await harness.enqueue("finish_run", {"run_id": 999, "status": "completed"})

    await harness.run()

    with pytest.raises(JobError) as failure:
        await job.result(timeout=1)
    assert failure.value.type_name == "RunNotFound"
    assert failure.value.message == "run 999 not found"
    stored = json.loads(await harness.raw_result(job.job_id))
    assert stored["s"] is False
    assert stored["r"] == {"__error__": {"type": "RunNotFound", "message": "run 999 not found"}}
    [record] = await harness.job_records()
    assert (record.status, record.tries, record.error_type) == ("failed", 1, "RunNotFound")


async def test_undecodable_job_bytes_fail_that_job_and_the_others_still_run(harness):
    queue = harness.settings.queue_name
    await harness.producer.set(job_key_prefix + "garbage", b"\x80\x04not json at all")
    await harness.producer.zadd(queue, {"garbage": timestamp_ms()})
    good = await harness.enqueue("create_profile", PROFILE)

    worker = await harness.run()

    assert (worker.jobs_failed, worker.jobs_complete) == (1, 1)
    bad = await harness.result("garbage")
    assert not bad.success
    assert isinstance(bad.result, JobError)
    assert bad.result.type_name == "InvalidPayload"
    assert "a pickle, which this worker never loads" in bad.result.message
    [record] = [r for r in await harness.job_records() if r.job_id == "garbage"]
    assert (record.function, record.status, record.tries) == ("?", "failed", 1)
    assert (await harness.result(good.job_id)).success
    assert await harness.count(Profile) == 1
    assert await harness.producer.zcard(queue) == 0


async def test_a_job_that_is_not_a_json_object_is_refused(harness):
    await harness.producer.set(job_key_prefix + "a-list", json.dumps(["create_profile"]))
    await harness.producer.zadd(harness.settings.queue_name, {"a-list": timestamp_ms()})

    worker = await harness.run()

    assert worker.jobs_failed == 1
    refused = (await harness.result("a-list")).result
    assert refused.type_name == "InvalidPayload"
    assert "must be a JSON object" in refused.message
