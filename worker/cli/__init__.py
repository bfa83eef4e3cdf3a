"""``dbjobs``: enqueue jobs, follow them, read the data, run a worker.

Only Typer is imported up front: arq, Redis, SQLAlchemy, pydantic and the domain load
inside the command that needs them, so ``dbjobs --help`` answers at once (0.15 s, where the
job registry alone would add 0.2 s of pydantic and schemas).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from worker.cli import data, health, jobs, lists, queue_controls, runs, serve
from worker.cli.output import CliError, Mode, command_group, refuse
from worker.environment import UnusableSettings
from worker.text import ExitCode

if TYPE_CHECKING:
    # Typer 0.29 ships its own copy of Click; its groups are typed with that copy's Context.
    from typer._click import Command, Context


class Commands(TyperGroup):
    """Every refusal (``CliError``), setting that cannot be used and mistyped command line
    becomes one line in the one error style and its exit code (with ``--json``, one JSON
    object too)."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        Mode.json = "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as problem:
            refuse(problem)
            ctx.exit(problem.code)
        except UnusableSettings as problem:
            refuse(CliError(problem.message, ExitCode.BAD_INPUT))
            ctx.exit(ExitCode.BAD_INPUT)
        except NoArgsIsHelpError:
            raise  # a group given no command prints its help
        except UsageError as problem:
            where = f"`{problem.ctx.command_path} --help`" if problem.ctx else "`dbjobs --help`"
            said = " ".join(problem.format_message().split())  # Click folds long lists
            refuse(CliError(f"{said} (see {where})", ExitCode.BAD_INPUT))
            ctx.exit(ExitCode.BAD_INPUT)


class JobCommands(TyperGroup):
    """``dbjobs enqueue``'s commands, derived from the job registry when first asked for."""

    def list_commands(self, ctx: Context) -> list[str]:
        return _job_commands().list_commands(ctx)

    def get_command(self, ctx: Context, name: str) -> Command | None:
        return _job_commands().get_command(ctx, name)


@functools.cache
def _job_commands() -> TyperGroup:
    from worker.cli import enqueue_commands

    return cast(TyperGroup, typer.main.get_command(enqueue_commands.app))


app = command_group(
    "Background jobs on arq + PostgreSQL: enqueue, follow, read, run a worker.",
    name="dbjobs",
    cls=Commands,
    pretty_exceptions_show_locals=False,  # locals may hold connection URLs
    add_completion=True,
)
enqueue_help = "Put a job on the queue. Every job takes --wait, --json, --job-id, --timeout."


def _show_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        typer.echo(f"dbjobs {version('dbjobs')}")
        raise typer.Exit()


@app.callback()
def _options(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Background jobs on arq + PostgreSQL: enqueue, follow, read, run a worker."""


app.add_typer(command_group(enqueue_help, cls=JobCommands), name="enqueue")
app.command("status")(jobs.status)
app.command("result")(jobs.result)
app.command("list")(lists.recent)
app.command("failed")(lists.failed)
app.command("retry")(jobs.retry)
app.command("cancel")(jobs.cancel)
app.add_typer(data.profile_app, name="profiles")
app.add_typer(data.profile_app, name="profile", hidden=True)  # the singular it first had
app.add_typer(data.experiments_app, name="experiments")
app.add_typer(runs.runs_app, name="runs")
app.command("worker")(serve.worker)
app.command("health")(health.health)
app.command("quarantine")(health.quarantine)
app.command("lanes")(queue_controls.lanes)
app.command("pause")(queue_controls.pause)
app.command("resume")(queue_controls.resume)
app.command("limit")(queue_controls.limit)
app.command("serve")(serve.serve)
app.command("demo")(serve.demo)


def main() -> None:
    app()


__all__ = ["app", "main"]
