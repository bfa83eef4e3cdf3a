"""Enqueue checked payloads, then report: the job id, and with ``--wait`` the outcome.

One payload is one job; several (a file of metric points in batches) are enqueued
together under ids ``<job id>:<n>``; a generation is followed chunk by chunk.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import typer

from worker.cli import output
from worker.cli.connect import run
from worker.cli.follow import (
    Outcome,
    await_many,
    await_outcome,
    current_outcome,
    deadline_after,
    follow_generation,
    progress_bar,
)
from worker.cli.inputs import new_job_id
from worker.jobs import GENERATE_PROFILES, Job

if TYPE_CHECKING:
    from worker.cli.connect import Backends


@dataclass(frozen=True)
class Delivery:
    """The options every ``jobs enqueue`` command shares."""

    job_id: str
    wait: bool = False
    as_json: bool = False
    timeout: float | None = None

    @classmethod
    def of(
        cls, *, job_id: str | None, wait: bool, as_json: bool, timeout: float | None
    ) -> Delivery:
        return cls(new_job_id(job_id), wait, as_json, timeout)


@dataclass(frozen=True)
class Report:
    outcome: Outcome
    deduplicated: bool
    fields: dict[str, Any] = field(default_factory=dict)


def submit(job: Job[Any], delivery: Delivery, payload: dict[str, Any]) -> None:
    """Enqueue the checked payload as ``job``, maybe wait, report, exit."""
    if job is GENERATE_PROFILES and delivery.wait:
        return submit_generation(delivery, payload)

    async def enqueue(backends: Backends) -> Report:
        return await enqueue_and_wait(backends, delivery, job.name, payload)

    report_and_exit(delivery, run(enqueue))
    return None


async def enqueue_and_wait(
    backends: Backends, delivery: Delivery, function: str, payload: dict[str, Any]
) -> Report:
    queue = await backends.queue()
    job = await queue.enqueue_job(function, payload, _job_id=delivery.job_id)
    deduplicated = job is None
    if deduplicated:
        await refuse_another_request(backends, delivery.job_id, function, payload)
        if not delivery.as_json:
            output.note(f"job {delivery.job_id} already exists: nothing new enqueued")
    if delivery.wait:
        outcome = await await_outcome(backends, delivery.job_id, deadline_after(delivery.timeout))
    elif deduplicated:
        outcome = await current_outcome(backends, delivery.job_id, describe=True) or Outcome(
            delivery.job_id, "queued", function
        )
    else:
        outcome = Outcome(delivery.job_id, "queued", function)
    return Report(outcome, deduplicated)


async def refuse_another_request(
    backends: Backends, job_id: str, function: str, payload: dict[str, Any]
) -> None:
    """A reused job id is fine for the same request; for another one it is a mistake."""
    known = await (await backends.job(job_id)).info()
    if known is None:  # finished and forgotten by Redis meanwhile: nothing to compare
        return
    from worker.serialization import arguments_omitted

    same_payload = arguments_omitted(known.args) or list(known.args) == [payload]
    if known.function != function or not same_payload or known.kwargs:
        raise output.CliError(
            f"job {job_id} already exists as {known.function} with another payload: "
            "nothing enqueued (choose another --job-id)"
        )


def submit_batches(job: Job[Any], delivery: Delivery, payloads: Sequence[dict[str, Any]]) -> None:
    """Many jobs of one kind, enqueued together; ids ``<job id>:<n>`` when more than one."""
    function = job.name
    job_ids = [delivery.job_id]
    if len(payloads) > 1:
        job_ids = [f"{delivery.job_id}:{n}" for n in range(len(payloads))]

    async def enqueue(backends: Backends) -> Report:
        from worker.enqueue import enqueue_many

        new = await enqueue_many(await backends.queue(), function, payloads, job_ids)
        fields = {"job_ids": job_ids, "deduplicated": len(job_ids) - len(new)}
        if fields["deduplicated"] and not delivery.as_json:
            output.note(
                f"{fields['deduplicated']} of {len(job_ids)} jobs already existed under these "
                "ids: not enqueued again"
            )
        if not delivery.wait:
            return Report(Outcome(delivery.job_id, "queued", function), False, fields)
        outcomes = await await_many(backends, job_ids, deadline_after(delivery.timeout))
        return Report(combined(delivery.job_id, function, outcomes), False, fields)

    report_and_exit(delivery, run(enqueue))


def combined(job_id: str, function: str, outcomes: Sequence[Outcome]) -> Outcome:
    """Several batch jobs read as one: counts summed, failures listed."""
    failures = [o for o in outcomes if o.status == "failed"]
    totals: dict[str, int] = {}
    for outcome in outcomes:
        if isinstance(outcome.result, dict):
            for key in ("received", "inserted", "duplicates"):
                if isinstance(outcome.result.get(key), int):
                    totals[key] = totals.get(key, 0) + outcome.result[key]
    result = {**_common_ids(outcomes), **totals, "jobs": len(outcomes), "failed": len(failures)}
    if not failures:
        return Outcome(job_id, "succeeded", function, result=result)
    first = failures[0]
    message = f"{len(failures)} of {len(outcomes)} jobs failed; first, {first.job_id}: "
    return Outcome(
        job_id,
        "failed",
        function,
        result=result,
        error_type=first.error_type,
        error_message=message + str(first.error_message),
    )


def _common_ids(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    run_ids = {o.result.get("run_id") for o in outcomes if isinstance(o.result, dict)}
    run_ids.discard(None)
    return {"run_id": run_ids.pop()} if len(run_ids) == 1 else {}


def report_and_exit(delivery: Delivery, report: Report) -> None:
    outcome = report.outcome
    if delivery.as_json:
        output.emit_json(as_json(delivery, report))
    else:
        show(delivery, report)
    if outcome.status == "failed":
        raise typer.Exit(output.EXIT_FAILED)


def as_json(delivery: Delivery, report: Report) -> dict[str, Any]:
    outcome = report.outcome
    data: dict[str, Any] = {
        "job_id": outcome.job_id,
        "function": outcome.function,
        "status": outcome.status,
        "deduplicated": report.deduplicated,
        **report.fields,
    }
    if delivery.wait:
        data["result"] = outcome.result
    if outcome.error is not None:
        data["error"] = outcome.error
    return data


def show(delivery: Delivery, report: Report) -> None:
    outcome = report.outcome
    if outcome.status == "failed":
        output.error(
            f"job {outcome.job_id} ({outcome.function}) failed: {outcome.described_error()}"
        )
        return
    if not delivery.wait:
        job_ids = report.fields.get("job_ids", [outcome.job_id])
        jobs = f"{len(job_ids)} {outcome.function} jobs" if len(job_ids) > 1 else outcome.function
        output.say(f"{outcome.status}: {jobs} as job {outcome.job_id}")
        if outcome.status != "succeeded":
            output.note(f"follow it with `jobs status {job_ids[-1]}`")
        return
    output.say(f"job {outcome.job_id} ({outcome.function}) succeeded")
    if outcome.result is not None:
        output.show_json(outcome.result)
    elif outcome.source == "history":
        output.note("its result is no longer kept in Redis (the job history has its outcome)")


def submit_generation(delivery: Delivery, payload: dict[str, Any]) -> None:
    """Enqueue a generation and follow it until every chunk has committed."""

    async def enqueue(backends: Backends) -> Report:
        started = time.monotonic()
        with progress_bar(enabled=not delivery.as_json) as bar:
            report = await enqueue_and_wait(backends, delivery, GENERATE_PROFILES.name, payload)
            plan = report.outcome.result
            if report.outcome.status != "succeeded" or not _is_plan(plan):
                return report
            bar.plan(plan["total"], plan["generation_id"])
            deadline = deadline_after(delivery.timeout)
            status = await follow_generation(backends, plan["generation_id"], deadline, bar)
        result = {**plan, "rows_done": status.rows_done, "chunks_done": status.chunks_done}
        result["seconds"] = round(time.monotonic() - started, 3)
        return replace(report, outcome=report.outcome.with_result(result))

    report = run(enqueue)
    result = report.outcome.result
    if not delivery.as_json and _is_plan(result):
        output.say(
            f"generation {result['generation_id']}: {result['rows_done']:,} of "
            f"{result['total']:,} profiles in {result['chunks_done']} of {result['chunks']} "
            f"chunks ({result['seconds']:.1f}s)"
        )
        return
    report_and_exit(delivery, report)


def _is_plan(result: Any) -> bool:
    return isinstance(result, dict) and {"generation_id", "total", "chunks"} <= result.keys()
