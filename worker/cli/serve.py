"""Long-running commands: ``jobs worker``, ``jobs serve`` and ``jobs demo``."""

from __future__ import annotations

from typing import Annotated

import typer

from worker.cli import output
from worker.cli.output import CliError
from worker.text import ExitCode


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

    from worker.cli.config import load_settings, reason, redis_address, redis_target, scrub
    from worker.main import prepare_worker

    settings = load_settings()
    redis_target(settings)  # a REDIS_URL arq refuses is bad input, not a crash of the worker
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
) -> None:
    """Serve the operations console: the dashboard and the HTTP API (/docs).

    It binds to 127.0.0.1 unless told otherwise. With JOBS_CONSOLE_TOKEN set, whatever
    changes state (enqueue, retry, cancel, mark handled) needs that token.
    """
    import uvicorn

    from worker.cli.config import load_settings, redis_target
    from worker.web.app import create_app
    from worker.web.security import describe

    settings = load_settings()
    redis_target(settings)  # a REDIS_URL arq refuses is bad input, not a crash at startup
    where = host or settings.console_host
    output.note(f"the console: http://{where}:{port or settings.console_port}/")
    output.note(f"its changes of state {describe(settings)}")
    uvicorn.run(
        create_app(settings),
        host=where,
        port=port or settings.console_port,
        log_level="info",
        # The console's own log says what a request did; the access log adds nothing
        # an operator needs and would log every poll of the live overview.
        access_log=False,
        server_header=False,
    )


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
