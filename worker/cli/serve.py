"""Long-running commands: ``dbjobs worker``, ``dbjobs serve`` and ``dbjobs demo``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from worker.cli import output
from worker.cli.output import CliError
from worker.text import ExitCode

if TYPE_CHECKING:
    pass


def worker(
    burst: Annotated[
        bool, typer.Option("--burst", help="Exit once the queue is empty (for scripts and tests).")
    ] = False,
) -> None:
    """Run a worker in the foreground.

    The same worker as `arq worker.main.WorkerSettings`.

    SIGINT or SIGTERM stop it gracefully (running jobs get JOBS_SHUTDOWN_GRACE seconds).
    """
    import logging.config

    from arq.logs import default_log_config
    from arq.worker import run_worker

    from worker.environment import (
        checked_redis_settings,
        load_settings,
        reason,
        redis_address,
        scrub,
    )
    from worker.main import prepare_worker

    settings = load_settings()
    checked_redis_settings(settings)  # a REDIS_URL arq refuses: bad input, not a crash
    logging.config.dictConfig(default_log_config(verbose=False))
    overrides = {"burst": True} if burst else {}
    try:
        run_worker(prepare_worker(settings), **overrides)
    except Exception as problem:
        if not _is_redis_outage(problem):
            logging.getLogger("worker").exception("the worker crashed")
            raise typer.Exit(ExitCode.FAILED) from None
        told = f"the worker stopped: Redis at {redis_address(settings)}: {reason(problem)}"
        raise CliError(scrub(told, settings)) from None


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: JOBS_CONSOLE_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port (default: JOBS_CONSOLE_PORT, 8000)."),
    ] = None,
    insecure_no_token: Annotated[
        bool,
        typer.Option(
            "--insecure-no-token",
            help="Listen beyond loopback without JOBS_CONSOLE_TOKEN: whoever reaches the "
            "console can enqueue, retry and cancel jobs.",
        ),
    ] = False,
) -> None:
    """Serve the operations console: the dashboard and the HTTP API (/docs).

    It binds to 127.0.0.1 unless told otherwise, and beyond loopback only with
    JOBS_CONSOLE_TOKEN set (or --insecure-no-token): whatever changes state (enqueue,
    retry, cancel, mark handled) then needs that token. It answers to the host names in
    JOBS_CONSOLE_ALLOWED_HOSTS (loopback names by default), and to the address it binds.
    """
    import uvicorn

    from worker.environment import checked_redis_settings, load_settings
    from worker.web.app import create_app
    from worker.web.security import describe
    from worker.web.serving import answering_to, needs_token, server_config

    settings = load_settings()
    checked_redis_settings(settings)  # a REDIS_URL arq refuses: bad input, not a crash
    where = host or settings.console_host
    if needs_token(where, settings) and not insecure_no_token:
        raise output.BadInput(
            f"the console would listen on {where}, beyond this machine, and anyone who "
            "reaches it could change state: set JOBS_CONSOLE_TOKEN (or pass "
            "--insecure-no-token if something else guards the address)"
        )
    settings = answering_to(where, settings)
    port = port or settings.console_port
    output.note(f"the console: http://{_in_url(where)}:{port}/")
    output.note(f"its changes of state {describe(settings)}")
    output.note(f"it answers to the hosts {', '.join(settings.console_allowed_hosts)}")
    config = server_config(create_app(settings), settings, host=where, port=port)
    uvicorn.Server(config).run()


def _in_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _is_redis_outage(problem: Exception) -> bool:
    """Redis unreachable or refusing us (the worker talks to nothing else before its jobs)."""
    from redis.exceptions import RedisError

    return isinstance(problem, OSError | RedisError)  # TimeoutError is an OSError


def demo(
    profiles: Annotated[
        int | None, typer.Option(min=1, help="Profiles to generate (default: the demo's own).")
    ] = None,
) -> None:
    """Run the whole pipeline in one process.

    On SQLite and fakeredis unless DATABASE_URL and REDIS_URL are set.
    """
    import importlib

    # Imported by name: the demo is optional weight the other commands never load.
    demo_module = importlib.import_module("worker.demo")
    code = demo_module.run() if profiles is None else demo_module.run(profiles=profiles)
    raise typer.Exit(int(code))
