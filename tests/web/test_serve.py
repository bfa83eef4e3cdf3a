"""``dbjobs serve`` as a user runs it: the console comes up on loopback, answers, and says
nothing secret in its log; beyond loopback only with a token or an explicit no. And the
real server's bounds, seen from a raw socket: a slow client is dropped, a body over the cap
is refused whether its length is declared or it comes in chunks."""

from __future__ import annotations

import json
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.web.conftest import TOKEN, Served, free_port, serving
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


LIMIT = 64 * 1024
PATIENCE = 20.0  # how long a test keeps trying before it says the server never acted


@pytest.fixture
def tight(settings: Settings) -> Iterator[Served]:
    """A real uvicorn with a small body cap and half a second for a request's head."""
    bounds = {"console_max_body_bytes": LIMIT, "console_header_timeout": 0.5}
    with serving(settings.model_copy(update=bounds)) as console:
        yield console


def _connect(served: Served) -> socket.socket:
    host, port = served.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=PATIENCE)


def _dropped_while_trickling(conn: socket.socket, head: bytes) -> bytes:
    """Send ``head`` a byte at a time until the server closes the connection; what it
    answered meanwhile (b"" when it said nothing)."""
    deadline = time.monotonic() + PATIENCE
    for byte in head:
        readable, _, _ = select.select([conn], [], [], 0.05)
        if readable:
            return _read_all(conn)
        try:
            conn.send(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return b""
        assert time.monotonic() < deadline, "the server kept a trickling client for ever"
    raise AssertionError("the whole head was sent: the server never dropped it")


def _read_all(conn: socket.socket) -> bytes:
    answer = b""
    while chunk := conn.recv(65536):
        answer += chunk
    return answer


def _answer(conn: socket.socket) -> bytes:
    """One HTTP answer (headers and a body with its Content-Length)."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += conn.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head.lower())[1])  # type: ignore[index]
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


SLOW_HEAD = b"GET /api/workers HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 2000


def test_a_client_that_sends_its_head_slowly_is_dropped(tight: Served):
    with _connect(tight) as conn:
        assert _dropped_while_trickling(conn, SLOW_HEAD) == b""
    with _connect(tight) as idle:  # says nothing at all
        assert _read_all(idle) == b""
    with _connect(tight) as kept:  # a request answered, then the next head trickles
        kept.sendall(b"GET /api/workers HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _answer(kept).startswith(b"HTTP/1.1 200")
        assert _dropped_while_trickling(kept, SLOW_HEAD) == b""


def test_a_body_over_the_cap_is_refused_by_a_real_server(tight: Served):
    post = b"POST /api/enqueue/record_metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    post += b"Content-Type: application/json\r\n"
    with _connect(tight) as declared:  # refused on its Content-Length: no byte of it sent
        declared.sendall(post + b"Content-Length: 100000000\r\n\r\n")
        answer = _answer(declared)
    assert answer.startswith(b"HTTP/1.1 413")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["type"] == "too_large"
    with _connect(tight) as chunked:  # counted as it comes: refused once over the cap
        chunked.sendall(post + b"Transfer-Encoding: chunked\r\n\r\n")
        piece = b"%x\r\n%s\r\n" % (16384, b" " * 16384)
        sent = 0
        while not select.select([chunked], [], [], 0)[0]:
            assert sent <= 4 * LIMIT, "the server read far past its cap"
            chunked.sendall(piece)
            sent += 16384
            time.sleep(0.01)
        answer = _answer(chunked)
    assert answer.startswith(b"HTTP/1.1 413")
    assert sent > LIMIT


def test_beyond_loopback_the_console_needs_a_token_or_an_explicit_no(settings: Settings):
    port = free_port()
    env = service_env(
        settings.database_url.get_secret_value(), settings.redis_url.get_secret_value()
    )
    command = [
        sys.executable,
        "-m",
        "worker.cli",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
    ]
    refused = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "set JOBS_CONSOLE_TOKEN" in refused.stderr
    assert "--insecure-no-token" in refused.stderr
    process = subprocess.Popen([*command, "--insecure-no-token"], cwd=ROOT, env=env)
    try:
        assert _first_answer(f"http://127.0.0.1:{port}/api/workers", process).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
