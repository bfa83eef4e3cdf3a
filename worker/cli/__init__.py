"""``jobs``: enqueue jobs, follow them, read the data, run a worker.

Only Typer is imported up front: arq, Redis, SQLAlchemy, pydantic and the domain load
inside the command that needs them, so ``jobs --help`` answers at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typer.core import TyperGroup

from worker.cli import enqueue, history, read, serve
from worker.cli.output import CliError, command_group, error

if TYPE_CHECKING:
    # Typer 0.29 ships its own copy of Click; its groups are typed with that copy's Context.
    from typer._click import Context


class Commands(TyperGroup):
    """Every refusal (``CliError``) becomes its message on stderr and its exit code."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as problem:
            error(problem.message)
            ctx.exit(problem.code)


app = command_group(
    "Background jobs on arq + PostgreSQL: enqueue, follow, read, run a worker.",
    name="jobs",
    cls=Commands,
    pretty_exceptions_show_locals=False,  # locals may hold connection URLs
)
app.add_typer(enqueue.app, name="enqueue")
app.command("status")(read.status)
app.command("result")(read.result)
app.command("failed")(history.failed)
app.command("retry")(history.retry)
app.add_typer(read.profile_app, name="profile")
app.add_typer(read.experiments_app, name="experiments")
app.command("worker")(serve.worker)
app.command("demo")(serve.demo)


def main() -> None:
    app()


__all__ = ["app", "main"]
