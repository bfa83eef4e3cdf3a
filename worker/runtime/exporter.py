"""A worker's own HTTP endpoint: ``/metrics`` for Prometheus, ``/healthz`` and ``/readyz``.

Served from a thread (prometheus_client's threading WSGI server), not the event loop: a
loop blocked by a job still gets its probes answered, with a 503 that says so, where a
server on the loop would just not answer. Off unless ``JOBS_METRICS_PORT`` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from worker.bootstrap import services_of
from worker.ops.workers import WORKER_STATES
from worker.runtime.probes import Health, Verdict
from worker.runtime.prometheus import REGISTRY, RUNNING, STATE, WORKER_UP

EXPORTER_KEY = "exporter"  # in ctx: the running server
StartResponse = Callable[..., Any]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # every scrape is no news
        pass


def app(health: Health) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    metrics = make_wsgi_app(REGISTRY)
    probes = {"/healthz": health.liveness, "/readyz": health.readiness}

    def serve(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        probe = probes.get(environ.get("PATH_INFO", ""))
        if probe is None:
            served: Iterable[bytes] = metrics(environ, start_response)
            return served
        return _answer(probe(), start_response)

    return serve


def _answer(verdict: Verdict, start_response: StartResponse) -> list[bytes]:
    body = f"{verdict.reason}\n".encode()
    status = "200 OK" if verdict.ok else "503 Service Unavailable"
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [body]


def watch(health: Health, running: Callable[[], int]) -> None:
    """The gauges read this worker's state at each scrape: nothing to do per job."""
    RUNNING.set_function(running)
    WORKER_UP.set_function(lambda: 1 if health.liveness().ok else 0)
    for state in WORKER_STATES:
        STATE.labels(state).set_function(_is_in(health, state))


def _is_in(health: Health, state: str) -> Callable[[], float]:
    return lambda: 1 if health.heartbeat.state == state else 0


def start(ctx: dict[str, Any], health: Health) -> None:
    settings = services_of(ctx).settings
    watch(health, health.heartbeat.running)
    if not settings.metrics_port:
        return
    try:
        server = make_server(
            settings.metrics_host,
            settings.metrics_port,
            app(health),
            ThreadingWSGIServer,
            handler_class=_Quiet,
        )
    except OSError as problem:
        raise RuntimeError(
            f"JOBS_METRICS_PORT={settings.metrics_port}: cannot listen on "
            f"{settings.metrics_host}:{settings.metrics_port} ({problem.strerror}); "
            "workers on one host each need a port of their own"
        ) from None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    ctx[EXPORTER_KEY] = server


def stop(ctx: dict[str, Any]) -> None:
    server = ctx.pop(EXPORTER_KEY, None)
    if isinstance(server, ThreadingWSGIServer):
        server.shutdown()
        server.server_close()
