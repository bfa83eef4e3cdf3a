"""``jobs serve`` as a user runs it: the console comes up on loopback, answers, and says
nothing secret in its log."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx

from tests.web.conftest import TOKEN, free_port
from worker.settings import Settings
from worker.testing.processes import ROOT, service_env


def test_jobs_serve_serves_the_dashboard_on_loopback(settings: Settings, tmp_path):
    port = free_port()
    database_url = settings.database_url.get_secret_value()
    env = service_env(database_url, settings.redis_url.get_secret_value())
    env.update(JOBS_CONSOLE_PORT=str(port), JOBS_CONSOLE_TOKEN=TOKEN)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        page = _first_answer(f"http://127.0.0.1:{port}/", process)
        assert page.status_code == 200
        assert "Overview" in page.text
        refused = httpx.post(f"http://127.0.0.1:{port}/api/jobs/handle", json={"all": True})
        assert refused.status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
    text = log.read_text()
    assert f"http://127.0.0.1:{port}/" in text
    assert "need JOBS_CONSOLE_TOKEN" in text
    assert TOKEN not in text
    assert database_url not in text


def _first_answer(url: str, process: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(url)
        except httpx.ConnectError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
