"""Stored text is printed as it is: never read as Rich markup, never acted on by the terminal.

Names, bios, failure reasons, job ids and error messages come from anyone who can enqueue
a job. Each read command must show them literally (exit 0, no ``MarkupError``), show
control characters as JSON-style escapes (``\\u001b``), and give them back exactly with
``--json``.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from arq.jobs import serialize_result

from domain import schemas, services
from domain.db import utcnow
from domain.repositories import JobStamp
from tests.cli.conftest import QUEUE, one_json
from tests.support.text import (
    ALERT,
    BIO,
    CLOSING,
    ERROR_MESSAGE,
    ERROR_TYPE,
    HYPERLINK,
    JOB_ID,
    LINK,
    NAMES,
    REASON,
    RED,
    REVERSED,
    assert_clean,
    assert_shown,
)
from worker.serialization import serialize


@pytest.fixture
async def stored(uow_factory):
    """A profile, an experiment per tricky name, and a failed run with a tricky reason."""
    async with uow_factory() as uow:
        profile = await services.create_profile(
            uow,
            schemas.CreateProfile(
                username="mallory", email="mallory@example.com", full_name=ALERT, bio=BIO
            ),
        )
    experiments = []
    for name in NAMES:
        async with uow_factory() as uow:
            experiment = await services.create_experiment(
                uow,
                schemas.CreateExperiment(owner_id=profile.id, name=name, description=HYPERLINK),
            )
        experiments.append(experiment.id)
    async with uow_factory() as uow:
        run = await services.start_run(uow, schemas.StartRun(experiment_id=experiments[0]))
    async with uow_factory() as uow:
        await services.finish_run(
            uow, schemas.FinishRun(run_id=run.id, status="failed", reason=REASON)
        )
    return {"profile": profile.id, "experiments": experiments}


@pytest.fixture
def failed_job(uow_factory):
    """Records a final failure as the worker would, with a tricky id, type and message."""

    async def record(job_id: str = JOB_ID, function: str = "finish_run") -> None:
        stamp = JobStamp(job_id, function, 2, utcnow() - timedelta(seconds=1))
        async with uow_factory() as uow:
            await uow.jobs.record_failure(
                stamp,
                error_type=ERROR_TYPE,
                message=ERROR_MESSAGE,
                payload={"run_id": 999, "status": "completed"},
            )
            await uow.commit()

    return record


async def test_profile_get_shows_a_profile_literally(cli, stored):
    table = await cli("profiles", "get", str(stored["profile"]))
    assert_shown(table, ALERT, "\\u001b[31mred\\u001b[0m\\n\\u001b]8;;http://x\\u001b\\ a\\rb")
    data = one_json(await cli("profiles", "get", str(stored["profile"]), "--json"))
    assert (data["full_name"], data["bio"]) == (ALERT, BIO)


async def test_experiments_list_shows_every_name_literally(cli, stored):
    table = await cli("experiments", "list")
    assert_shown(table, *NAMES)
    assert f"{len(NAMES)} experiment(s)" in table.stdout
    as_json = await cli("experiments", "list", "--json")
    assert_clean(as_json)
    assert "\\u001b" in as_json.stdout
    assert [e["name"] for e in one_json(as_json)["experiments"]] == NAMES


async def test_experiments_show_shows_names_descriptions_and_reasons_literally(cli, stored):
    for experiment_id, name in zip(stored["experiments"], NAMES, strict=True):
        shown = await cli("experiments", "show", str(experiment_id))
        assert_shown(shown, name, HYPERLINK)
        data = one_json(await cli("experiments", "show", str(experiment_id), "--json"))
        assert (data["name"], data["description"]) == (name, HYPERLINK)
    with_run = await cli("experiments", "show", str(stored["experiments"][0]))
    assert "\\u001b]8;;http://x\\u001b\\\\n│ 99 │ completed │ \\u202eevil" in with_run.stdout
    data = one_json(await cli("experiments", "show", str(stored["experiments"][0]), "--json"))
    assert data["runs"][0]["failure_reason"] == REASON


async def test_failed_lists_a_tricky_failure_literally(cli, failed_job):
    await failed_job()
    await failed_job("plain", function=LINK)
    table = await cli("failed")
    assert_shown(table, JOB_ID, ERROR_TYPE, LINK, "\\u001b[31mred\\u001b[0m")
    assert "\\nfake row \\u202eevil" in table.stdout
    assert "2 failed job(s)" in table.stdout
    data = one_json(await cli("failed", "--json"))["failed"]
    assert {(f["job_id"], f["function"]) for f in data} == {(JOB_ID, "finish_run"), ("plain", LINK)}
    assert {(f["error_type"], f["error_message"]) for f in data} == {(ERROR_TYPE, ERROR_MESSAGE)}


async def test_status_and_result_show_a_tricky_failure_literally(cli, failed_job):
    await failed_job()
    status = await cli("status", JOB_ID)
    assert_shown(status, f"job {JOB_ID}: failed (finish_run, try 2)", ERROR_TYPE, LINK)
    assert "\\u001b[31mred\\u001b[0m" in status.stdout
    data = one_json(await cli("status", JOB_ID, "--json"))
    assert data["error"] == {"type": ERROR_TYPE, "message": ERROR_MESSAGE}
    result = await cli("result", JOB_ID)
    assert result.exit_code == 1  # the job failed
    assert_clean(result)
    assert f"job {JOB_ID} (finish_run) failed: {ERROR_TYPE}: \\u001b[31mred" in result.stderr
    retried = await cli("retry", JOB_ID)
    assert_shown(retried, f"queued: finish_run as job {JOB_ID}:retry:1")


async def test_result_shows_a_tricky_result_literally(cli, queue):
    now_ms = int(time.time() * 1000)
    result = {"name": CLOSING, "note": RED, "link": LINK, "bidi": REVERSED + "\x7f\x9b"}
    raw = serialize_result(
        "create_profile", ({},), {}, 1, now_ms, True, result, now_ms, now_ms, "ref", QUEUE, JOB_ID,
        serializer=serialize,
    )  # fmt: skip
    assert raw is not None
    queue.client.set(f"arq:result:{JOB_ID}", raw)
    shown = await cli("result", JOB_ID)
    assert_shown(shown, CLOSING, LINK, '"\\u001b[31mred\\u001b[0m"', '"\\u202eevil\\u007f\\u009b"')
    assert one_json(await cli("result", JOB_ID, "--json"))["result"] == result


async def test_a_job_id_with_markup_is_enqueued_and_read_back(cli, queue, failed_job):
    args = ("enqueue", "create-profile", "--username", "eve", "--email", "eve@example.com",
            "--full-name", ALERT, "--job-id", JOB_ID)  # fmt: skip
    enqueued = await cli(*args)
    assert_shown(enqueued, f"queued: create_profile as job {JOB_ID}")
    assert f"dbjobs status {JOB_ID}" in enqueued.stderr
    again = await cli(*args)
    assert_shown(again, f"queued: create_profile as job {JOB_ID}")
    assert f"job {JOB_ID} already exists" in again.stderr
    assert_shown(await cli("status", JOB_ID), f"job {JOB_ID}: queued (create_profile)")
    assert queue.payload(JOB_ID)["full_name"] == ALERT
    await failed_job(JOB_ID, function="create_profile")
    assert_shown(await cli("failed"), JOB_ID, ERROR_TYPE)


@pytest.mark.parametrize("job_id", ["a\x1bb", "\x1b[31mred", "x\u202ey", "a\x7f", "a\x9bb"])
async def test_a_job_id_with_control_characters_is_refused(cli, queue, job_id):
    result = await cli("enqueue", "start-run", "3", "--job-id", job_id)
    assert result.exit_code == 2
    assert_clean(result)
    assert "--job-id" in result.stderr
    assert "control and bidi characters are not allowed" in result.stderr
    assert queue.job_ids() == []
