"""``worker.runtime.probes`` verdicts as ``worker.runtime.exporter`` serves them (on a loopback
port)."""

from __future__ import annotations

import socket
from time import monotonic

import pytest

from tests.support.scrape import parse
from worker.bootstrap import SERVICES_KEY, Services
from worker.ops.workers import READY, STOPPING
from worker.runtime.exporter import app, start, watch
from worker.runtime.heartbeats import Heartbeat
from worker.runtime.probes import Health
from worker.settings import Settings

EVERY = 1.0


@pytest.fixture
def health() -> Health:
    heartbeat = Heartbeat(None, "q", "host:1", EVERY, running=lambda: 2)  # type: ignore[arg-type]
    heartbeat.state = READY
    heartbeat.written_at = heartbeat.database_at = monotonic()
    return Health(heartbeat)


def get(health: Health, path: str) -> tuple[str, str]:
    answer: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"] = status

    body = b"".join(app(health)({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, start_response))
    return answer["status"], body.decode()


def test_a_beating_ready_worker_is_alive_and_ready(health):
    assert get(health, "/healthz") == ("200 OK", "alive\n")
    assert get(health, "/readyz") == ("200 OK", "ready\n")


def test_a_stopping_worker_is_alive_but_not_ready(health):
    health.heartbeat.state = STOPPING
    assert get(health, "/healthz") == ("200 OK", "alive\n")
    assert get(health, "/readyz") == ("503 Service Unavailable", "stopping\n")


def test_a_silent_loop_is_neither_alive_nor_ready(health):
    health.heartbeat.ticked_at = monotonic() - 10 * EVERY
    for path in ("/healthz", "/readyz"):
        status, reason = get(health, path)
        assert status == "503 Service Unavailable"
        assert reason.startswith("the event loop has not run for 10.")


@pytest.mark.parametrize(
    ("lapsed", "reason"),
    [
        ("written_at", "Redis has not taken a heartbeat lately\n"),
        ("database_at", "the database has not answered lately\n"),
    ],
)
def test_a_backend_that_stopped_answering_makes_it_unready(health, lapsed, reason):
    setattr(health.heartbeat, lapsed, monotonic() - 10 * EVERY)
    assert get(health, "/healthz") == ("200 OK", "alive\n")
    assert get(health, "/readyz") == ("503 Service Unavailable", reason)


def test_metrics_read_the_workers_state_at_each_scrape(health):
    watch(health, health.heartbeat.running)
    status, body = get(health, "/metrics")
    found = parse(body)
    assert status == "200 OK"
    assert found[("dbjobs_jobs_running", ())] == 2
    assert found[("dbjobs_worker_state", (("state", "ready"),))] == 1
    health.heartbeat.state = STOPPING
    found = parse(get(health, "/metrics")[1])
    assert found[("dbjobs_worker_state", (("state", "ready"),))] == 0
    assert found[("dbjobs_worker_state", (("state", "stopping"),))] == 1


def test_a_taken_port_is_refused_naming_the_setting(health):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings(_env_file=None, metrics_port=port)
        ctx = {SERVICES_KEY: Services.for_worker(settings, None)}  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match=f"JOBS_METRICS_PORT={port}: cannot listen"):
            start(ctx, health)
