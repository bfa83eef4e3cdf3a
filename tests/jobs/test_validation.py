"""Registration and payload validation, through a real arq worker on fakeredis."""

from __future__ import annotations

from typing import Any

import pytest

from domain.models import (
    Experiment,
    GenerationChunk,
    Metric,
    Profile,
    ProfileGeneration,
    Run,
)
from worker.registry import JOBS
from worker.serialization import JobError

EFFECT_TABLES = (Profile, ProfileGeneration, GenerationChunk, Experiment, Run, Metric)

# A payload each job accepts, and one field set to a value of the wrong type.
VALID: dict[str, dict[str, Any]] = {
    "generate_profiles": {"count": 10},
    "generate_profiles_chunk": {"generation_id": 1, "chunk_index": 0},
    "create_profile": {"username": "ada", "email": "ada@example.com", "full_name": "Ada L"},
    "update_profile": {"profile_id": 1, "changes": {"bio": "hello"}},
    "create_experiment": {"owner_id": 1, "name": "baseline"},
    "start_run": {"experiment_id": 1},
    "finish_run": {"run_id": 1, "status": "completed"},
    "record_metric": {"run_id": 1, "name": "loss", "step": 0, "value": 0.5},
    "record_metrics": {"run_id": 1, "points": [{"name": "loss", "step": 0, "value": 0.5}]},
    "fail_stale_runs": {"idle_seconds": 60},
    "prune_job_history": {"keep_days": 7},
}
WRONG_TYPE: dict[str, tuple[str, Any]] = {
    "generate_profiles": ("count", "many"),
    "generate_profiles_chunk": ("chunk_index", "first"),
    "create_profile": ("username", ["ada"]),
    "update_profile": ("profile_id", "me"),
    "create_experiment": ("owner_id", {"id": 1}),
    "start_run": ("experiment_id", "latest"),
    "finish_run": ("run_id", "last"),
    "record_metric": ("value", "high"),
    "record_metrics": ("points", "all of them"),
    "fail_stale_runs": ("idle_seconds", "long"),
    "prune_job_history": ("keep_days", "a week"),
}


async def test_every_job_and_cron_job_is_registered_under_its_name(harness):
    worker = harness.worker()

    assert set(VALID) == set(JOBS)
    assert set(worker.functions) == set(JOBS) | {"cron:fail_stale_runs", "cron:prune_job_history"}
    for name in JOBS:
        assert worker.functions[name].name == name


async def assert_failed_once_on(harness, job_id: str, field: str) -> None:
    info = await harness.result(job_id)
    assert not info.success
    assert info.job_try == 1
    assert isinstance(info.result, JobError)
    assert info.result.type_name == "InvalidPayload"
    assert field in info.result.message

    [record] = await harness.job_records()
    assert (record.job_id, record.status, record.tries) == (job_id, "failed", 1)
    assert record.error_type == "InvalidPayload"
    assert field in (record.error_message or "")
    for table in EFFECT_TABLES:
        assert await harness.count(table) == 0, table.__tablename__


@pytest.mark.parametrize("name", sorted(VALID))
async def test_an_unknown_field_fails_the_job_once_naming_the_field(harness, name):
    payload = {**VALID[name], "surprise_field": 1}
    job = await harness.enqueue(name, payload)

    worker = await harness.run()

    assert (worker.jobs_failed, worker.jobs_retried) == (1, 0)
    await assert_failed_once_on(harness, job.job_id, "surprise_field")
    [record] = await harness.job_records()
    # Kept with the worker's defaults filled in, so that a retry is the very same request.
    assert record.payload == JOBS[name].complete(payload, harness.settings, job.job_id)


@pytest.mark.parametrize("name", sorted(WRONG_TYPE))
async def test_a_wrongly_typed_field_fails_the_job_once_naming_the_field(harness, name):
    field, value = WRONG_TYPE[name]
    job = await harness.enqueue(name, {**VALID[name], field: value})

    worker = await harness.run()

    assert (worker.jobs_failed, worker.jobs_retried) == (1, 0)
    await assert_failed_once_on(harness, job.job_id, field)


async def test_a_payload_can_come_as_keyword_arguments(harness):
    job = await harness.enqueue("create_profile", **VALID["create_profile"])

    await harness.run()

    assert (await harness.result(job.job_id)).result["username"] == "ada"
    assert await harness.count(Profile) == 1


async def test_a_payload_given_twice_is_refused(harness):
    job = await harness.enqueue("create_profile", VALID["create_profile"], bio="extra")

    await harness.run()

    info = await harness.result(job.job_id)
    assert (info.success, info.job_try, info.result.type_name) == (False, 1, "InvalidPayload")
    assert "not both" in info.result.message
    assert await harness.count(Profile) == 0
