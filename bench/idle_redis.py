"""What an idle worker sends to Redis, command by command, and on whose behalf.

Read with MONITOR on the bench's logical database: every command a client sends, and,
apart, the calls a script makes inside Redis (``client_type`` lua), which MONITOR shows
too. Each command is put down to the part of the worker that sends it by the keys it
names; a transaction's MULTI and EXEC to the commands between them, on that connection.
A connection that sent nothing of the worker's (another program scanning the databases
for a free one: SELECT, DBSIZE) is left out.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from arq.connections import ArqRedis

# (what the command's text holds, whose it is), the first match wins.
SOURCES = (
    ("BLPOP", "doorbell wait"),
    (":claims", "claim"),  # the claim script's turn counter, among its keys
    ("dbjobs:worker", "heartbeat"),
    ("health-check", "arq health check"),
    ("ZCARD", "arq health check"),  # its count of the queue
    ("cron:", "cron tick"),  # its enqueue, run and end, the minute's job
    ("arq:abort", "cron tick"),  # the abort requests, read while a job runs
    ("arq:in-progress:", "lease keeper"),
    ("ZRANGEBYSCORE", "lease keeper"),  # the ready head, for arq's raw claims to cap
    ("outbox", "outbox"),
    ("sweeper", "sweep turn"),
)
UNATTRIBUTED = ("MULTI", "EXEC", "SELECT", "DBSIZE", "PING", "CLIENT")


def source_of(command: str) -> str | None:
    """The part of the worker that sent ``command`` (MONITOR's text of it); None when the
    command names none (a transaction's bounds, a connection's set-up)."""
    for mark, source in SOURCES:
        if mark in command:
            return source
    name = _name(command)
    return None if name in UNATTRIBUTED else f"other ({name})"


def _name(command: str) -> str:
    return command.split(" ", 1)[0].strip('"').upper()


@dataclass
class Tally:
    """The commands seen over ``seconds``, by source; the scripts' own calls apart."""

    seconds: float
    by_source: Counter[str] = field(default_factory=Counter)
    script_calls: int = 0

    @property
    def per_second(self) -> float:
        return sum(self.by_source.values()) / self.seconds

    def breakdown(self) -> str:
        """``source rate`` for each source, busiest first, then the scripts' calls."""
        parts = [
            f"{source} {count / self.seconds:.2f}" for source, count in self.by_source.most_common()
        ]
        parts.append(f"(their scripts' own calls {self.script_calls / self.seconds:.2f})")
        return ", ".join(parts)


def tally_commands(seconds: float, sent: dict[str, list[str]], script_calls: int) -> Tally:
    """``sent``: each connection's commands in order."""
    tally = Tally(seconds, script_calls=script_calls)
    for commands in sent.values():
        sources = [source_of(command) for command in commands]
        if not any(sources):
            continue  # not the worker's connection
        pending = 0  # MULTI, or a connection's set-up, waiting for the next command's source
        last = "connection set-up"
        for command, source in zip(commands, sources, strict=True):
            if source is None and _name(command) == "EXEC":
                tally.by_source[last] += 1
            elif source is None:
                pending += 1
            else:
                tally.by_source[source] += 1 + pending
                pending, last = 0, source
        tally.by_source[last] += pending
    return tally


async def monitor_commands(pool: ArqRedis, seconds: float) -> Tally:
    """The commands sent to ``pool``'s logical database over ``seconds``, but this one's."""
    database = int(pool.connection_pool.connection_kwargs.get("db", 0))
    sent: dict[str, list[str]] = defaultdict(list)
    script_calls = 0
    deadline = time.perf_counter() + seconds
    async with pool.monitor() as monitor:
        while (left := deadline - time.perf_counter()) > 0:
            try:
                command = await asyncio.wait_for(monitor.next_command(), timeout=left)
            except TimeoutError:
                break
            if int(command.get("db", -1)) != database:
                continue
            if command.get("client_type") == "lua":
                script_calls += 1
            else:
                sent[str(command.get("client_port"))].append(str(command.get("command", "")))
    return tally_commands(seconds, sent, script_calls)
