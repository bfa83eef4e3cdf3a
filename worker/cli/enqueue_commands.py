"""``dbjobs enqueue <job>``: one command per registered job, derived from its payload schema.

A job whose payload is flat gets its command generated: one argument or option per field,
with the field's description as help, plus the options every job takes. Two payloads are
not flat and have a command written for them: ``update-profile`` (``--set FIELD=VALUE``)
and ``record-metrics`` (points from a file). Every payload is checked by its schema before
Redis is touched.
"""

from __future__ import annotations

import enum
import inspect
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, Union, get_args, get_origin

import typer
from pydantic.fields import FieldInfo

from worker.cli.options import DELIVERY, Delivery
from worker.cli.output import command_group
from worker.registry import JOBS, RECORD_METRICS, UPDATE_PROFILE, Job

app = command_group("The commands of `dbjobs enqueue`.")


def delivered(command: Callable[..., None], parameters: list[inspect.Parameter]) -> Any:
    """A command of ``parameters`` and the delivery options, calling ``command`` with the
    former by name and the latter as one ``Delivery``."""

    def with_delivery(**values: Any) -> None:
        delivery = Delivery.of(**{name: values.pop(name) for name in DELIVERY})
        command(delivery, **values)

    options = [_keyword(name, kind, default) for name, (kind, default) in DELIVERY.items()]
    with_delivery.__signature__ = inspect.Signature([*parameters, *options])  # type: ignore[attr-defined]
    with_delivery.__doc__ = command.__doc__
    return with_delivery


def written(command: Callable[..., None]) -> Any:
    """A command written for a job whose payload is not flat; its first parameter receives
    the delivery options."""
    parameters = list(inspect.signature(command, eval_str=True).parameters.values())[1:]
    return delivered(command, parameters)


def _keyword(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )


def _field_parameter(job: Job[Any], name: str, field: FieldInfo) -> inspect.Parameter:
    """A command-line parameter for a payload field. Click shows the field's type but hands
    the text over as it is: the schema parses and checks it, so every problem is reported
    in one style, all at once."""
    bare = _bare(field.annotation)
    choices = tuple(map(str, get_args(bare))) if get_origin(bare) is Literal else ()
    text_or_number = bare if bare in (int, float) else str
    kind: Any = enum.Enum(name, {c: c for c in choices}, type=str) if choices else text_or_number
    parse: Any = None if choices else str
    required = field.is_required() and name not in job.defaults
    help_text = field.description or ""
    default: Any
    if name in job.arguments:
        info: Any = typer.Argument(metavar=job.label(name), help=help_text, parser=parse)
        default = inspect.Parameter.empty if required else None
    else:
        info = typer.Option(job.label(name), help=help_text, show_default=False, parser=parse)
        default = ... if required else None
    return _keyword(name, Annotated[kind if required else kind | None, info], default)


def _bare(annotation: Any) -> Any:
    """``int`` for ``int | None``."""
    if get_origin(annotation) in (Union, types.UnionType):
        return next(a for a in get_args(annotation) if a is not type(None))
    return annotation


def generated_command(job: Job[Any]) -> Any:
    """The command of a job whose payload is flat: a parameter per field, arguments first
    (in order), the job id field apart."""
    fields = job.schema.model_fields
    named = [name for name in fields if name not in job.arguments and name != job.job_id_field]
    parameters = [_field_parameter(job, name, fields[name]) for name in [*job.arguments, *named]]

    def command(delivery: Delivery, **values: Any) -> None:
        from worker.cli.inputs import checked
        from worker.cli.submit import submit

        raw = {name: _plain(value) for name, value in values.items() if value is not None}
        if job.job_id_field:  # sent, so that a retry of the same request names the same thing
            raw[job.job_id_field] = delivery.job_id
        submit(job, delivery, checked(job, raw, delivery.job_id))

    command.__doc__ = job.schema.__doc__
    return delivered(command, parameters)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _has_numeric_arguments(job: Job[Any]) -> bool:
    return any(job.schema.model_fields[name].annotation in (int, float) for name in job.arguments)


def update_profile(
    delivery: Delivery,
    profile_id: Annotated[str, typer.Argument(metavar="PROFILE_ID", help="The profile to change.")],
    assignments: Annotated[
        list[str] | None,
        typer.Option(
            "--set", metavar="FIELD=VALUE", help="Repeatable: username, email, full_name, bio."
        ),
    ] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            metavar="PATH",
            help='A JSON object of changes, e.g. {"bio": "Hello"}; - reads stdin. '
            "With --set too, both apply, and --set wins for a field given in both.",
        ),
    ] = None,
    expected_version: Annotated[
        str | None, typer.Option(help="Refuse the change unless the profile is at this version.")
    ] = None,
) -> None:
    """Change fields of a profile.

    For example: dbjobs enqueue update-profile 42 --set bio="Hello" --set full_name="Ada L",
    or dbjobs enqueue update-profile 42 --file changes.json
    """
    from worker.cli.inputs import checked, parse_assignments, read_changes
    from worker.cli.submit import submit

    from_file = read_changes(file) if file is not None else {}
    raw: dict[str, Any] = {
        "profile_id": profile_id,
        "changes": {**from_file, **parse_assignments(assignments or [])},
    }
    if expected_version is not None:
        raw["expected_version"] = expected_version
    submit(UPDATE_PROFILE, delivery, checked(UPDATE_PROFILE, raw, delivery.job_id))


def _schema_option(job: Job[Any], name: str) -> Any:
    """A written command's option for a payload field, as a generated command has it."""
    return _field_parameter(job, name, job.schema.model_fields[name]).annotation


if TYPE_CHECKING:
    RunId: TypeAlias = str
    OnConflict: TypeAlias = str | None
    LateSeconds: TypeAlias = int | None
else:  # what typer reads: built from the schema at import, as a generated command's
    RunId = _schema_option(RECORD_METRICS, "run_id")  # RUN_ID <int>, as record-metric's
    OnConflict = _schema_option(RECORD_METRICS, "on_conflict")
    LateSeconds = _schema_option(RECORD_METRICS, "late_seconds")


class FileFormat(enum.StrEnum):
    jsonl = "jsonl"
    csv = "csv"


def record_metrics(
    delivery: Delivery,
    run_id: RunId,
    file: Annotated[
        str, typer.Option(help="JSON lines or CSV (name,step,value[,recorded_at]); - reads stdin.")
    ],
    file_format: Annotated[
        FileFormat | None, typer.Option("--format", help="Default: from the file name.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=50_000, help="Points per job; each batch is one job.")
    ] = 1000,
    on_conflict: OnConflict = None,
    late_seconds: LateSeconds = None,
) -> None:
    """Record metric points from a file.

    JSON lines or CSV (name,step,value[,recorded_at]). Points go in batch jobs of
    --batch-size; with several batches their ids are <job id>:0, <job id>:1, ...
    """
    from worker.cli.inputs import checked, checked_batches
    from worker.cli.submit import submit_batches
    from worker.ops.point_checks import batch_payloads

    fmt = file_format.value if file_format else None
    given = {"run_id": run_id, "on_conflict": _plain(on_conflict), "late_seconds": late_seconds}
    fields = {name: value for name, value in given.items() if value is not None}
    with checked_batches(file, fmt, batch_size) as batches:
        payloads = batch_payloads(
            batches, fields, lambda raw: checked(RECORD_METRICS, raw, delivery.job_id)
        )
        submit_batches(RECORD_METRICS, delivery, payloads, len(batches))


WRITTEN = {
    UPDATE_PROFILE.name: written(update_profile),
    RECORD_METRICS.name: written(record_metrics),
}


def _register_commands() -> None:
    for job in JOBS.values():
        if job.producers_enqueue_it:
            command = WRITTEN.get(job.name) or generated_command(job)
            # A negative number (record-metric's VALUE -0.5) is a value, not an option.
            settings = {"ignore_unknown_options": True} if _has_numeric_arguments(job) else {}
            app.command(job.command, context_settings=settings)(command)


_register_commands()
