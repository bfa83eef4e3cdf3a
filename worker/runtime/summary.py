"""What a worker logs by default: a line per slow job and a summary line every minute.

arq's two lines per job (start, success) are off unless ``JOBS_LOG_EACH_JOB`` asks for
them: at a thousand jobs a second they cost a quarter of the worker's CPU. Failures and
retries keep their own line each (arq's and ``worker.runtime.delivery``'s). What the
per-job lines told an operator (how many, how fast) the summary says once a period, and a
job slower than ``JOBS_LOG_SLOW_SECONDS`` still gets its line. Counting costs a job one
list append and one integer increment (``JobTally.ended``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from worker.runtime.tasks import cancel_and_wait

log = logging.getLogger("worker.jobs")


@dataclass
class JobTally:
    """This process's jobs since the last summary, by outcome, and their durations."""

    slow_seconds: float = 10.0
    counts: dict[str, int] = field(default_factory=dict)
    durations: list[float] = field(default_factory=list)

    def ended(self, outcome: str, seconds: float, function: str, job_id: object) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        self.durations.append(seconds)
        if seconds >= self.slow_seconds:
            log.warning("job %s (%s) was slow: %.1fs, %s", job_id, function, seconds, outcome)

    def take(self) -> tuple[dict[str, int], list[float]]:
        """The period's counts and durations; the next period starts empty."""
        counts, durations = self.counts, self.durations
        self.counts, self.durations = {}, []
        return counts, durations


TALLY = JobTally()  # the worker process's, fed by every JobMeter


def summary_line(counts: dict[str, int], durations: list[float], period: float) -> str | None:
    """'jobs in the last 60s: 5,210 succeeded, 2 failed; p50 4.1 ms, p99 38.0 ms'; None
    for a period without jobs (an idle worker stays quiet)."""
    if not durations:
        return None
    ranked = sorted(durations)
    told = ", ".join(f"{n:,} {outcome}" for outcome, n in sorted(counts.items()))
    p50, p99 = (ranked[min(len(ranked) - 1, int(q * len(ranked)))] * 1000 for q in (0.5, 0.99))
    return f"jobs in the last {period:.0f}s: {told}; p50 {p50:.1f} ms, p99 {p99:.1f} ms"


class SummaryLogger:
    """The worker's background task that logs ``TALLY``'s summary every ``every`` seconds."""

    def __init__(self, tally: JobTally, every: float) -> None:
        self.tally = tally
        self.every = every
        self._since = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.tally.take()  # what ended before this worker's start is not its period's
        self._since = time.monotonic()
        if self.every > 0:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop, logging the last (shorter) period's summary."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self.log()

    def log(self) -> None:
        now = time.monotonic()
        period, self._since = now - self._since, now
        if line := summary_line(*self.tally.take(), period):
            log.info("%s", line)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self.log()
