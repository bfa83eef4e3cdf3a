"""No pickle; passwords never in logs, reprs or error messages; Redis passwords work."""

from __future__ import annotations

import ast
import asyncio
import pickle
from pathlib import Path

import orjson
import pytest

from domain.db import create_engine
from tests.support.fleet import Fleet, wait_for
from tests.support.queue import arq_client as arq_pool
from tests.support.servers import free_port, redis_server
from worker.bootstrap import redis_settings
from worker.main import build_worker_settings
from worker.serialization import serialize
from worker.settings import Settings
from worker.testing.processes import ROOT, run_cli, service_env

pytestmark = pytest.mark.e2e

DB_SECRET = "db-S3cret-pw"
REDIS_SECRET = "redis-S3cret-pw"
PICKLE_LIKE = frozenset({"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "jsonpickle"})
PICKLE_LIKE |= {"marshal", "shelve"}
ARQ_CONSTRUCTORS = frozenset({"create_pool", "Worker", "ArqRedis"})


def source_files() -> list[Path]:
    packages = (Path(ROOT) / "worker", Path(ROOT) / "domain")
    return sorted(path for package in packages for path in package.rglob("*.py"))


def pickle_uses(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in PICKLE_LIKE]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_LIKE:
            found.append(node.module or "")
        elif isinstance(node, ast.Name) and node.id in PICKLE_LIKE:
            found.append(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in {"loads", "dumps"}
            and (isinstance(node.value, ast.Name) and node.value.id in PICKLE_LIKE)
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_pickle_in_worker_or_domain_code():
    files = source_files()
    assert len(files) > 20
    uses = {str(p.relative_to(ROOT)): pickle_uses(ast.parse(p.read_text())) for p in files}
    assert {path: found for path, found in uses.items() if found} == {}


def test_every_arq_connection_in_worker_code_speaks_json():
    """arq falls back to pickle when a pool or worker is given no serializer."""
    unsafe = []
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and _called(node) in ARQ_CONSTRUCTORS:
                keywords = {k.arg for k in node.keywords}
                if None not in keywords and not {"job_serializer", "job_deserializer"} <= keywords:
                    unsafe.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert unsafe == []
    options = build_worker_settings(Settings())
    assert options["job_serializer"] is serialize
    json_only = options["job_deserializer"]
    job = {"t": 1, "f": "job", "a": [], "k": {}, "et": 1}
    assert json_only(serialize(job)) == job
    with pytest.raises(orjson.JSONDecodeError):  # read as JSON, never unpickled
        json_only(pickle.dumps({"f": "job"}))


def _called(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def test_reprs_and_dumps_hide_passwords():
    database_url = f"postgresql://app:{DB_SECRET}@db.example:5432/jobs"
    settings = Settings(DATABASE_URL=database_url, REDIS_URL=f"redis://:{REDIS_SECRET}@r:6379/0")
    target = redis_settings(settings)
    assert target.password == REDIS_SECRET  # kept, and used, but never shown
    engine = create_engine(settings.database_url.get_secret_value())
    shown = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        str(settings.model_dump()),
        repr(target),
        str(target),
        repr(engine),
        repr(engine.url),
        repr(build_worker_settings(settings)),
    ]
    assert [text for text in shown if DB_SECRET in text or REDIS_SECRET in text] == []


@pytest.mark.usefixtures("redis_server_binary")
async def test_a_worker_uses_redis_passwords_and_never_shows_any(tmp_path):
    """One authenticated worker serves a bad job and one failing on an unreachable
    database (its password in the URL); two others fail to reach Redis. No password in any
    log or error message."""
    closed_database = f"postgresql://postgres:{DB_SECRET}@127.0.0.1:{free_port()}/dbjobs"
    with redis_server(password=REDIS_SECRET) as server:
        env = service_env(
            closed_database, server.url(), JOBS_MAX_TRIES="2", JOBS_RETRY_BASE_DELAY="0.1"
        )
        fleet = Fleet(env, tmp_path)
        try:
            worker = fleet.start()  # authenticated to Redis
            wrong_password = fleet.launch(
                REDIS_URL=server.url().replace(REDIS_SECRET, "nope"),
                JOBS_REDIS_CONNECT_RETRIES="0",
            )
            closed_redis = fleet.launch(
                REDIS_URL=f"redis://:{REDIS_SECRET}@127.0.0.1:{free_port()}/0",
                JOBS_REDIS_CONNECT_RETRIES="0",
            )
            async with arq_pool(server.url()) as pool:
                job = await pool.enqueue_job("create_profile", {"username": "x"})
                assert job is not None
                with pytest.raises(Exception) as invalid:  # noqa: PT011 - any error type
                    await job.result(timeout=30)
                payload = {"username": "grace", "email": "g@example.com", "full_name": "G H"}
                job = await pool.enqueue_job("create_profile", payload)
                assert job is not None
                with pytest.raises(Exception) as unreachable:  # noqa: PT011 - any error type
                    await job.result(timeout=30)
                logged = f"{job.job_id}:create_profile failed"
                await wait_for(lambda: _logged(worker, logged), within=10, what="failure log")
            codes = [await asyncio.to_thread(w.wait, 30) for w in (wrong_password, closed_redis)]
        finally:
            fleet.stop_all()
    assert "Field required" in str(invalid.value)
    message = str(unreachable.value)
    assert "Connection refused" in message
    assert DB_SECRET not in message
    assert codes[0] != 0
    assert codes[1] != 0
    logs = {w.log_path.name: w.log for w in fleet.workers}
    assert "AuthenticationError" in logs[wrong_password.log_path.name]
    assert "Connection refused" in logs[closed_redis.log_path.name]
    assert [name for name, log in logs.items() if DB_SECRET in log or REDIS_SECRET in log] == []
    assert "create_profile failed" in worker.log  # the authenticated one served the jobs
    assert "hit a transient" in worker.log


async def _logged(worker, needle: str) -> bool:
    return needle in worker.log


def test_cli_errors_never_show_passwords():
    env = service_env(
        f"postgresql://postgres:{DB_SECRET}@127.0.0.1:{free_port()}/dbjobs",
        f"redis://:{REDIS_SECRET}@127.0.0.1:{free_port()}/0",
    )
    for command in (["status", "some-job"], ["failed"]):
        done = run_cli(command, env, timeout=60)
        output = done.stdout + done.stderr
        assert done.returncode != 0, output
        assert "127.0.0.1" in output  # it says where it could not connect...
        assert DB_SECRET not in output  # ...never with what
        assert REDIS_SECRET not in output
