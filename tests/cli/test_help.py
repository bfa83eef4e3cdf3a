"""``dbjobs --help`` stays instant: the heavy libraries load inside the commands only."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from worker.cli import app
from worker.testing.processes import ROOT

HEAVY = ("arq", "asyncio", "asyncpg", "domain", "faker", "redis", "rich", "sqlalchemy")

PROBE = """
import sys
from worker.cli import app
try:
    app(sys.argv[1:])
except SystemExit:
    pass
print(" ".join(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr)
"""


def modules_loaded_by(*args: str) -> set[str]:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert probe.returncode == 0, probe.stderr
    assert "Usage:" in probe.stdout
    return set(probe.stderr.split())


def test_help_loads_none_of_the_heavy_libraries():
    top = modules_loaded_by("--help")
    assert top.isdisjoint({*HEAVY, "pydantic"})
    # The enqueue commands come from the job registry, which reads the payload schemas
    # (pydantic and domain.schemas), and nothing of the database or the queue.
    for args in (["enqueue", "--help"], ["enqueue", "record-metrics", "--help"]):
        assert modules_loaded_by(*args).isdisjoint(set(HEAVY) - {"domain"})


def test_help_lists_every_command():
    from typer.testing import CliRunner

    top = CliRunner().invoke(app, ["--help"])
    for command in ("enqueue", "status", "result", "failed", "retry", "profiles", "experiments"):
        assert command in top.stdout
    assert "worker" in top.stdout
    assert "demo" in top.stdout
    jobs = CliRunner().invoke(app, ["enqueue", "--help"])
    for job in (
        "generate-profiles", "create-profile", "update-profile", "create-experiment",
        "start-run", "finish-run", "record-metric", "record-metrics", "fail-stale-runs",
        "prune-job-history",
    ):  # fmt: skip
        assert job in jobs.stdout


# What no read command needs: the console, the demo's fake data, migrations, the worker.
NOT_FOR_READS = {"alembic", "fastapi", "faker", "jinja2", "prometheus_client", "uvicorn"}


def probed(*args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """The command run in a fresh interpreter, and the top-level modules it loaded."""
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return probe, set(probe.stderr.split())


def test_enqueueing_and_reading_the_queue_load_no_database_library(clean_redis, pg_database):
    """A producer talks to Redis only: SQLAlchemy and asyncpg would cost it 0.3 s a call;
    so does `dbjobs status` of a job Redis holds, and `dbjobs health`. A prefix of the id
    is looked up in the history too, over asyncpg alone."""
    services = {"REDIS_URL": clean_redis.url, "DATABASE_URL": pg_database}
    enqueue = ("enqueue", "record-metric", "1", "loss", "0", "0.5", "--job-id", "probed")
    enqueued, loaded = probed(*enqueue, **services)
    assert "queued" in enqueued.stdout, enqueued.stderr
    assert {"arq", "redis", "pydantic"} <= loaded
    assert loaded.isdisjoint({"sqlalchemy", "asyncpg", "aiosqlite", *NOT_FOR_READS})
    for command in (["status", "probed"], ["health"], ["status", "probe"]):
        read, loaded = probed(*command, **services)
        assert "probed: queued" in read.stdout or "no worker" in read.stdout, read.stderr
        assert "redis" in loaded
        database = {"asyncpg"} if command[-1] == "probe" else set()
        assert loaded & {"asyncpg", "sqlalchemy"} == database, command
        assert loaded.isdisjoint(NOT_FOR_READS), command


def test_the_history_lists_load_neither_sqlalchemy_nor_the_queue(pg_database):
    """`dbjobs list` and `dbjobs failed` read the history over asyncpg alone: arq, redis and
    SQLAlchemy with its models (a third of a second) stay unloaded."""
    for command in (["list", "--limit", "1"], ["failed", "--limit", "1"]):
        read, loaded = probed(*command, DATABASE_URL=pg_database)
        assert read.returncode == 0, read.stderr
        assert {"asyncpg", "domain"} <= loaded
        assert loaded.isdisjoint({"sqlalchemy", "arq", "redis", *NOT_FOR_READS}), command


def test_status_of_a_job_only_the_history_holds_loads_no_sqlalchemy(clean_redis, pg_database):
    """`dbjobs status` of a job Redis has forgotten reads its record over asyncpg alone."""
    asyncio.run(_record_a_finished_job(pg_database, "history-probed"))
    services = {"REDIS_URL": clean_redis.url, "DATABASE_URL": pg_database}
    read, loaded = probed("status", "history-probed", **services)
    assert "history-probed: succeeded (record_metric, try 2)" in read.stdout, read.stderr
    assert "from the job history" in read.stderr
    assert {"asyncpg", "redis"} <= loaded
    assert loaded.isdisjoint({"sqlalchemy", *NOT_FOR_READS})


def test_status_of_a_submission_and_of_a_generation_loads_no_sqlalchemy(clean_redis, pg_database):
    """A submission's jobs added up, and a generation's chunks counted, over asyncpg alone:
    a generation Redis has forgotten reads as a whole, as it does while Redis holds it."""
    asyncio.run(_record_a_submission_and_a_generation(pg_database))
    services = {"REDIS_URL": clean_redis.url, "DATABASE_URL": pg_database}
    read, loaded = probed("status", "sub-probed", **services)
    assert "job sub-probed: failed" in read.stdout, read.stderr
    assert "1 of 2 jobs failed; first, sub-probed:1:" in read.stdout
    assert "RunNotFound: run 9 not found" in read.stdout
    assert "jobs: 2 ended: 1 failed, 1 succeeded" in read.stdout
    assert loaded.isdisjoint({"sqlalchemy", *NOT_FOR_READS})
    read, loaded = probed("status", "gen-probed", **services)
    assert "generation: 7: 2 of 3 chunks committed, 150 of 250 profiles written" in read.stdout
    assert loaded.isdisjoint({"sqlalchemy", *NOT_FOR_READS})


async def _record_a_finished_job(url: str, job_id: str, **columns: object) -> None:
    import asyncpg

    from worker.cli.direct_reads import direct_dsn

    row = {"function": "record_metric", "status": "succeeded", "tries": 2, **columns}
    names = ", ".join(row)
    values = ", ".join(f"${n}" for n in range(2, len(row) + 2))
    connection = await asyncpg.connect(direct_dsn(url))
    try:
        await connection.execute(
            f"INSERT INTO job_records (job_id, {names}, started_at, finished_at, duration_ms, "
            f"enqueued_at) VALUES ($1, {values}, now(), now(), 1, now())",
            job_id,
            *row.values(),
        )
    finally:
        await connection.close()


async def _record_a_submission_and_a_generation(url: str) -> None:
    import asyncpg

    from worker.cli.direct_reads import direct_dsn

    batch = {"function": "record_metrics", "tries": 1, "parent_id": "sub-probed"}
    await _record_a_finished_job(url, "sub-probed:0", **batch, result='{"inserted": 5}')
    failure = {"error_type": "RunNotFound", "error_message": "run 9 not found"}
    await _record_a_finished_job(url, "sub-probed:1", **batch, status="failed", **failure)
    plan = '{"generation_id": 7, "total": 250, "chunks": 3}'
    await _record_a_finished_job(url, "gen-probed", function="generate_profiles", result=plan)
    chunk = {"function": "generate_profiles_chunk", "tries": 1, "parent_id": "gen-probed"}
    await _record_a_finished_job(url, "gen-probed:chunk:0", **chunk)
    connection = await asyncpg.connect(direct_dsn(url))
    try:
        await connection.execute(
            "INSERT INTO profile_generations (id, key, seed, total, chunk_size) "
            "VALUES (7, 'probed', 1, 250, 100)"
        )
        await connection.execute(
            "INSERT INTO profile_generation_chunks (generation_id, chunk_index, rows_inserted) "
            "VALUES (7, 0, 100), (7, 2, 50)"
        )
    finally:
        await connection.close()


def test_both_console_scripts_run_the_same_app():
    """`dbjobs` is the name no shell owns; `jobs` stays for scripts that say `uv run jobs`."""
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["dbjobs"] == scripts["jobs"] == "worker.cli:main"


def test_profiles_is_plural_and_the_singular_still_answers():
    from typer.testing import CliRunner

    top = CliRunner().invoke(app, ["--help"]).stdout
    assert "profiles" in top
    assert " profile " not in top  # the old name is a hidden alias
    assert (
        "Usage: dbjobs profile list"
        in CliRunner().invoke(app, ["profile", "list", "--help"]).stdout
    )


def test_placeholders_read_as_words_not_python_types():
    from typer.testing import CliRunner

    shown = CliRunner().invoke(app, ["enqueue", "update-profile", "--help"], env={"COLUMNS": "120"})
    assert "--set FIELD=VALUE" in shown.stdout
    assert "--timeout SECONDS" in shown.stdout
    assert "<list[str]>" not in shown.stdout
    assert "<float range>" not in shown.stdout


def test_a_run_id_has_one_type_wherever_it_is_taken():
    from typer.testing import CliRunner

    for command in ("record-metric", "record-metrics", "finish-run"):
        shown = CliRunner().invoke(app, ["enqueue", command, "--help"], env={"COLUMNS": "120"})
        assert "RUN_ID <int>" in shown.stdout, command
    for command in (["runs", "show"], ["runs", "metrics"]):
        shown = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
        arguments = shown.stdout.split("Arguments:")[1].split("Options:")[0]
        assert "int" in arguments
        assert "<str>" not in arguments


def test_the_shell_completes_commands_and_their_options():
    """`dbjobs --install-completion` installs it; the enqueue commands complete too,
    although they are built only when asked for."""
    from typer.testing import CliRunner

    def completed(words: str) -> list[str]:
        env = {"_DBJOBS_COMPLETE": "complete_bash", "COMP_WORDS": words}
        env["COMP_CWORD"] = str(len(words.split()) - 1)
        return CliRunner().invoke(app, [], prog_name="dbjobs", env=env).stdout.split()

    assert completed("dbjobs st") == ["status"]
    assert completed("dbjobs list --st") == ["--state"]
    assert completed("dbjobs enqueue record-metrics --ba") == ["--batch-size"]
