"""Bad input from a raw arq client that bypasses the CLI: refused once, clearly, harmlessly.

Every bad job fails on its first try with an error that names the problem, writes no
row, is not retried, and the worker goes on serving good jobs. SQL-looking text is just
text: stored verbatim, every table intact.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from arq.constants import job_key_prefix

from tests.support.fleet import Summary, report, results, rows, wait_for
from worker.quarantine import read_quarantine
from worker.settings import Settings

pytestmark = pytest.mark.e2e

RUN = 1  # the run the ``run_id`` fixture creates in the emptied tables
PICKLE_MARKER = Path("/tmp/dbjobs-pickle-was-executed")
# A protocol-0 pickle that runs ``os.system("touch ...")`` when unpickled. Written by hand:
# the worker must refuse it without ever handing it to a pickle loader.
PICKLE_BOMB = b"cos\nsystem\n(S'touch " + str(PICKLE_MARKER).encode() + b"'\ntR."
DOMAIN_TABLES = ("profiles", "experiments", "runs", "metrics", "profile_generations")
ALL_TABLES = (*DOMAIN_TABLES, "profile_generation_chunks", "job_records")


@dataclass(frozen=True)
class Bad:
    case: str
    function: str
    payload: Any  # one JSON object for the job, or raw bytes for arq's job key
    error_type: str
    says: tuple[str, ...]


def metric(**fields: Any) -> dict[str, Any]:
    return {"run_id": RUN, "name": "loss", "step": 1, "value": 0.5, **fields}


def profile(**fields: Any) -> dict[str, Any]:
    return {"username": "grace", "email": "grace@example.com", "full_name": "G H", **fields}


def raw_job(function: str, payload_json: str) -> bytes:
    """arq's job encoding, built by hand so that it can carry what JSON cannot."""
    now = int(time.time() * 1000)
    return f'{{"t":1,"f":"{function}","a":[{payload_json}],"k":{{}},"et":{now}}}'.encode()


INVALID = "InvalidPayload"
BAD_JOBS = [
    Bad("wrong-types", "record_metric", metric(run_id="one", step="ten", value=[1]), INVALID,
        ("run_id", "step", "value")),
    Bad("not-an-object", "record_metric", [1, 2, 3], INVALID, ("valid dictionary",)),
    Bad("missing-fields", "create_profile", {"username": "grace"}, INVALID,
        ("email: Field required", "full_name: Field required")),
    Bad("extra-field", "create_profile", profile(is_admin=True), INVALID,
        ("is_admin: Extra inputs are not permitted",)),
    Bad("read-only-field", "update_profile", {"profile_id": 1, "changes": {"version": 99}},
        INVALID, ("read-only", "version")),
    Bad("negative-step", "record_metric", metric(step=-1), INVALID,
        ("step", "greater than or equal to 0")),
    Bad("step-over-int32", "record_metric", metric(step=2**31), INVALID, ("step",)),
    Bad("id-over-bigint", "record_metric", metric(run_id=2**63), INVALID, ("run_id",)),
    Bad("zero-id", "record_metric", metric(run_id=0), INVALID, ("run_id",)),
    Bad("count-too-big", "generate_profiles", {"count": 10**9}, INVALID, ("count",)),
    Bad("nan-as-string", "record_metric", metric(value="NaN"), INVALID,
        ("value", "finite number")),
    Bad("inf-as-string", "record_metric", metric(value="-Infinity"), INVALID,
        ("value", "finite number")),
    Bad("nan-raw-json", "record_metric", raw_job("record_metric", json.dumps(
        metric(value=float("nan")))), INVALID, ("the job is not JSON (unexpected",)),
    Bad("inf-raw-json", "record_metric", raw_job("record_metric", json.dumps(metric()).replace(
        "0.5", "1e400")), INVALID, ("number is infinity",)),
    Bad("huge-username", "create_profile", profile(username="a" * 1_000_000), INVALID,
        ("username", "at most 64 characters")),
    Bad("huge-bio", "create_profile", profile(bio="b" * 200_000), INVALID, ("bio",)),
    Bad("huge-batch", "record_metrics", {"run_id": RUN, "points": [
        {"name": "loss", "step": i, "value": 0.5} for i in range(50_001)]}, INVALID,
        ("points", "at most 50000 items")),
    Bad("unknown-run", "record_metric", metric(run_id=999_999), "RunNotFound",
        ("run 999999 not found",)),
    Bad("unknown-profile", "update_profile", {"profile_id": 424_242, "changes": {"bio": "x"}},
        "ProfileNotFound", ("profile 424242 not found",)),
    Bad("unknown-experiment", "start_run", {"experiment_id": 31_337}, "ExperimentNotFound",
        ("experiment 31337 not found",)),
    Bad("unknown-generation", "generate_profiles_chunk", {"generation_id": 777, "chunk_index": 0},
        "GenerationNotFound", ("profile generation 777 not found",)),
    # Not a job this worker can read or run: refused unrun, once, and recorded like the
    # others (under the function it names, or "?"); a pickle is never loaded.
    Bad("unknown-function", "drop_all_tables", {}, INVALID,
        ("no job 'drop_all_tables' is registered",)),
    Bad("undecodable-bytes", "record_metric", b"\x80\x04\x95\xff\xfe not json", INVALID,
        ("a pickle, which this worker never loads",)),
    Bad("json-not-an-object", "record_metric", b'["record_metric", 1]', INVALID,
        ("must be a JSON object",)),
    Bad("pickle-bomb", "record_metric", PICKLE_BOMB, INVALID, ("the job is not JSON",)),
    # arq reads these outside its own error handling: each once ended the worker.
    Bad("try-not-a-number", "record_metric", b'{"t":"x","f":"record_metric","a":[],"k":{},'
        b'"et":1}', INVALID, ("not an arq job",)),
    Bad("function-not-text", "record_metric", b'{"t":1,"f":["x"],"a":[],"k":{},"et":1}',
        INVALID, ("not an arq job",)),
    Bad("time-not-a-number", "record_metric", b'{"t":1,"f":"record_metric","a":[],"k":{},'
        b'"et":"soon"}', INVALID, ("not an arq job",)),
]  # fmt: skip
SQL_PROFILE = {
    "username": "bobby_tables",
    "email": "bobby@example.com",
    "full_name": "Robert'); DROP TABLE profiles;--",
    "bio": "1' OR '1'='1'; DELETE FROM metrics; --",
}
SQL_METRIC = metric(name="loss'; DROP TABLE metrics; --", step=7)
SQL_JOB_ID = "x'); DROP TABLE job_records; --"


def pickle_was_executed() -> bool:
    return PICKLE_MARKER.exists()


async def enqueue_bad(pool, bad: Bad) -> str:
    job_id = f"bad:{bad.case}"
    if isinstance(bad.payload, bytes):
        await pool.psetex(job_key_prefix + job_id, 600_000, bad.payload)
        await pool.zadd(Settings().queue_name, {job_id: int(time.time() * 1000)})
    else:
        assert await pool.enqueue_job(bad.function, bad.payload, _job_id=job_id) is not None
    return job_id


# Queue entries no worker can serve, by how the quarantine names them.
POISON = {b"\xff\xfe-not-utf8": "\\xff\\xfe-not-utf8", b"hash-job": "hash-job"}


async def plant_poison(pool) -> None:
    await pool.hset(job_key_prefix + "hash-job", "f", "record_metric")
    await pool.zadd(Settings().queue_name, dict.fromkeys(POISON, int(time.time() * 1000)))


async def table_counts(factory) -> dict[str, int]:
    counts = {}
    for table in ALL_TABLES:  # a dropped table would fail here
        counts[table] = (await rows(factory, f"SELECT count(*) FROM {table}"))[0][0]
    return counts


async def test_bad_input_is_refused_once_and_the_worker_keeps_serving(
    workers, pool, session_factory, run_id
):
    assert run_id == RUN
    assert not pickle_was_executed()
    worker = workers.start()
    before = await table_counts(session_factory)
    await plant_poison(pool)  # entries that once stopped every worker that met them
    ids = [await enqueue_bad(pool, bad) for bad in BAD_JOBS]
    sql_jobs = [
        await pool.enqueue_job("create_profile", SQL_PROFILE, _job_id=SQL_JOB_ID),
        await pool.enqueue_job("record_metric", SQL_METRIC),
    ]

    async def all_finished() -> bool:
        return len(await results(pool, ids)) == len(ids)

    await wait_for(all_finished, within=60, what="bad jobs finished")
    outcomes = await results(pool, ids)
    for bad in BAD_JOBS:
        print(f"{bad.case:20} {outcomes[f'bad:{bad.case}'].result!s:.150}")
    problems = [p for bad in BAD_JOBS for p in _check(bad, outcomes[f"bad:{bad.case}"])]
    problems += await _check_history(session_factory)
    assert not problems, "\n".join(problems)
    assert "↻ bad:" not in worker.log  # nothing was retried
    assert not pickle_was_executed()
    quarantined = await read_quarantine(pool, Settings().queue_name)
    assert sorted(record.entry for record in quarantined.latest) == sorted(POISON.values())

    assert all(job is not None for job in sql_jobs)
    stored_profile = (await sql_jobs[0].result(timeout=20))["full_name"]
    assert (await sql_jobs[1].result(timeout=20))["inserted"] == 1
    assert stored_profile == SQL_PROFILE["full_name"]
    await _assert_verbatim(session_factory)
    after = await table_counts(session_factory)
    # Only the two SQL-looking jobs wrote anything.
    assert {t: after[t] - before[t] for t in DOMAIN_TABLES} == {
        "profiles": 1,
        "experiments": 0,
        "runs": 0,
        "metrics": 1,
        "profile_generations": 0,
    }

    good = await pool.enqueue_job("create_profile", profile())
    assert good is not None
    assert (await good.result(timeout=20))["username"] == "grace"
    report(
        Summary(
            scenario="7. bad input through a raw arq client",
            jobs_run=len(BAD_JOBS) + len(sql_jobs) + 1,
            faults=f"{len(BAD_JOBS)} bad jobs (types, ranges, NaN, huge, unknown, raw bytes), "
            f"{len(POISON)} poison queue entries",
            rows_lost=0,
            rows_doubled=0,
            recovery="each failed on try 1; the next good job succeeded",
        )
    )


def _check(bad: Bad, outcome: Any) -> list[str]:
    error = outcome.result
    problems = []
    if outcome.success or outcome.job_try != 1:
        problems.append(f"{bad.case}: success={outcome.success} try={outcome.job_try}")
    if getattr(error, "type_name", None) != bad.error_type:
        problems.append(f"{bad.case}: error {error!r}, expected {bad.error_type}")
    missing = [s for s in bad.says if s not in getattr(error, "message", "")]
    if missing:
        problems.append(f"{bad.case}: message {error!s:.300} does not say {missing}")
    return problems


async def _check_history(factory) -> list[str]:
    """One failed record (try 1, type, message) for each bad job."""
    history = {
        job_id: (status, tries, error_type, message, duration)
        for job_id, status, tries, error_type, message, duration in await rows(
            factory,
            "SELECT job_id, status, tries, error_type, error_message, duration_ms "
            "FROM job_records WHERE job_id LIKE 'bad:%'",
        )
    }
    expected = {f"bad:{bad.case}": bad for bad in BAD_JOBS}
    problems = [f"history has {sorted(set(history) - set(expected))} too many"]
    problems = problems if set(history) - set(expected) else []
    for job_id, bad in expected.items():
        status, tries, error_type, message, duration = history.get(job_id, (None,) * 5)
        if (status, tries, error_type) != ("failed", 1, bad.error_type) or duration is None:
            problems.append(f"{bad.case}: history {status} try {tries} {error_type}")
        elif not all(s in message for s in bad.says):
            problems.append(f"{bad.case}: recorded message {message:.300}")
    return problems


async def _assert_verbatim(factory) -> None:
    stored = await rows(
        factory,
        "SELECT full_name, bio FROM profiles WHERE username = :username",
        username=SQL_PROFILE["username"],
    )
    assert stored == [(SQL_PROFILE["full_name"], SQL_PROFILE["bio"])]
    names = await rows(factory, "SELECT name FROM metrics WHERE step = 7")
    assert names == [(SQL_METRIC["name"],)]
    recorded = await rows(
        factory, "SELECT status FROM job_records WHERE job_id = :id", id=SQL_JOB_ID
    )
    assert recorded == [("succeeded",)]
