"""Enqueue checked payloads, then report: the job id, and with ``--wait`` the outcome.

One payload is one job; several (a file of metric points in batches) are enqueued
together under ids ``<job id>:<n>``, children of ``<job id>``; a generation is followed
chunk by chunk. Every multi-job wait shows a progress bar.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import typer

from worker.cli import output
from worker.cli.connect import run
from worker.cli.follow import await_generation, await_many, await_outcome, progress_bar
from worker.cli.options import Delivery
from worker.ops.actions import enqueue_once, enqueue_submission, enqueued_outcome
from worker.ops.following import deadline_after, generation_result
from worker.ops.job_state import Outcome, generation_plan
from worker.ops.submissions import combined
from worker.registry import GENERATE_PROFILES, Job
from worker.text import ExitCode

if TYPE_CHECKING:
    from worker.cli.connect import Backends


@dataclass(frozen=True)
class Report:
    outcome: Outcome
    job_ids: list[str]
    deduplicated: int = 0  # how many of the jobs already existed: enqueued again as nothing


def submit(job: Job[Any], delivery: Delivery, payload: dict[str, Any]) -> None:
    """Enqueue the checked payload as ``job``, maybe wait, report, exit."""
    if job is GENERATE_PROFILES and delivery.wait:
        return submit_generation(delivery, payload)
    report_and_exit(delivery, run(lambda b: enqueue_and_wait(b, delivery, job.name, payload)))
    return None


async def enqueue_and_wait(
    backends: Backends, delivery: Delivery, function: str, payload: dict[str, Any]
) -> Report:
    new = await enqueue_once(backends, function, payload, delivery.job_id, lane=delivery.lane)
    return await followed(backends, delivery, function, new=new)


async def followed(backends: Backends, delivery: Delivery, function: str, *, new: bool) -> Report:
    """The report on a job just enqueued (``new``, or the same request made before): with
    ``--wait``, once it has ended."""
    if not new and not delivery.as_json:
        output.note(f"job {delivery.job_id} already exists: nothing new enqueued")
    if delivery.wait:
        deadline = deadline_after(delivery.timeout)
        outcome = await await_outcome(backends, delivery.job_id, deadline, quiet=delivery.as_json)
    else:
        outcome = await enqueued_outcome(backends, delivery.job_id, function, new=new)
    return Report(outcome, [delivery.job_id], int(not new))


def submit_batches(
    job: Job[Any], delivery: Delivery, payloads: Iterable[dict[str, Any]], count: int
) -> None:
    """``count`` jobs of one kind as one submission (``worker.ops.actions``): ids ``<job
    id>:<n>`` when more than one; with ``--wait``, a bar until all have ended."""

    async def enqueue(backends: Backends) -> Report:
        submitted = await enqueue_submission(
            backends, job.name, payloads, delivery.job_id, count, lane=delivery.lane
        )
        job_ids, deduplicated = submitted.job_ids, submitted.deduplicated
        if deduplicated and not delivery.as_json:
            output.note(
                f"{deduplicated} of {len(job_ids)} jobs already existed under these ids: "
                "not enqueued again"
            )
        if not delivery.wait:
            return Report(Outcome.queued(delivery.job_id, job.name), job_ids, deduplicated)
        with progress_bar(not delivery.as_json, f"{len(job_ids)} {job.name} jobs") as bar:
            deadline = deadline_after(delivery.timeout)
            outcomes = await await_many(backends, job_ids, deadline, bar)
        return Report(combined(delivery.job_id, job.name, outcomes), job_ids, deduplicated)

    report_and_exit(delivery, run(enqueue))


def submit_generation(delivery: Delivery, payload: dict[str, Any]) -> None:
    """Enqueue a generation and follow it until every chunk has committed."""

    async def enqueue(backends: Backends) -> Report:
        started = time.monotonic()
        with progress_bar(not delivery.as_json, "planning the generation") as bar:
            report = await enqueue_and_wait(backends, delivery, GENERATE_PROFILES.name, payload)
            plan = generation_plan(report.outcome.result)
            if report.outcome.state != "succeeded" or plan is None:
                return report
            generation_id = plan["generation_id"]
            bar(total=plan["total"], description=f"generation {generation_id}")
            deadline = deadline_after(delivery.timeout)
            status = await await_generation(backends, generation_id, delivery.job_id, deadline, bar)
        result = generation_result(plan, status, time.monotonic() - started)
        return replace(report, outcome=report.outcome.with_result(result))

    report_and_exit(delivery, run(enqueue))


def report_and_exit(delivery: Delivery, report: Report) -> None:
    outcome = report.outcome
    if delivery.as_json:
        data = outcome.as_json(with_result=delivery.wait)
        output.emit_json({**data, "job_ids": report.job_ids, "deduplicated": report.deduplicated})
    else:
        show(delivery, report)
    if outcome.state == "failed":
        raise typer.Exit(ExitCode.FAILED)


def show(delivery: Delivery, report: Report) -> None:
    outcome = report.outcome
    if outcome.state == "failed":
        output.error(
            f"job {outcome.job_id} ({outcome.function}) failed: {outcome.described_error()}"
        )
        return
    if not delivery.wait:
        count = len(report.job_ids)
        jobs = f"{count} {outcome.function} jobs" if count > 1 else outcome.function
        output.say(f"{outcome.state}: {jobs} as job {outcome.job_id}")
        if outcome.state != "succeeded":
            output.note(f"follow it with `dbjobs status {outcome.job_id}`")
        return
    result = outcome.result
    if generation_plan(result) and "rows_done" in result:
        output.say(
            f"generation {result['generation_id']} (job {outcome.job_id}): "
            f"{result['rows_done']:,} of "
            f"{result['total']:,} profiles in {result['chunks_done']} of {result['chunks']} "
            f"chunks ({result['seconds']:.1f}s)"
        )
        return
    output.say(f"job {outcome.job_id} ({outcome.function}) succeeded")
    if result is not None:
        output.show_json(result)
        warn_of_conflicts(result)


def warn_of_conflicts(result: Any) -> None:
    """Metric points that met another stored value are counted in the result: say it too."""
    conflicts = result.get("conflicts") if isinstance(result, dict) else None
    if not isinstance(conflicts, int) or conflicts <= 0:
        return
    overwritten = int(result.get("overwritten") or 0)
    points = f"{conflicts:,} point" + ("s" if conflicts > 1 else "")
    named = [
        f"{c['name']} step {c['step']} held {c['stored']!r}, sent {c['sent']!r}"
        for c in result.get("conflicting") or []
        if isinstance(c, dict)
    ]
    example = f" ({'; '.join(named)}{', ...' if len(named) < conflicts else ''})" if named else ""
    if overwritten == conflicts:
        output.warn(f"{points} replaced another stored value{example}")
    else:
        output.warn(
            f"{points} not recorded: the step already holds another value, kept{example}; "
            "--on-conflict overwrite replaces it"
        )
