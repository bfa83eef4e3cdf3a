"""What a test needs from the machine, read from its fixtures, and whether the machine has it.

A test needs PostgreSQL or Redis when it asks (directly or through other fixtures) for
``pg_database`` or ``redis_space``, or carries the ``postgres`` or ``redis`` marker (the
PostgreSQL side of a test parametrized over both databases does), and the server binaries
when it asks for ``postgres_binaries`` or ``redis_server_binary`` (the fixtures that start
private servers do). Each test gets the marker of each service it needs as it is
collected, so ``-m "not postgres and not redis"`` selects what runs without services.
Each need is checked once per run, and only if a collected test has it.

When one is missing, the tests that need it are skipped, before any fixture is set up,
all with one reason, and the run ends with one block saying what was left out and the
command that starts the services. Under CI (``CI=true``) a missing need stops the run
instead: there it means a broken machine, and a run that skipped half the suite must not
pass. A service that answers but refuses the suite (a wrong user or password) stops the
run everywhere: starting it again would not help, so skipping would only hide the cause.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import asyncpg
import pytest
import redis

from tests.support.servers import PG_BIN, REDIS_SERVER
from worker.testing.scratch import ADMIN_URL, REDIS_BASE_URL

START_SERVICES = "docker compose up -d postgres redis"
# docker-compose.yml's PostgreSQL has the superuser dbjobs, not postgres.
COMPOSE_ADMIN_URL = "postgresql://dbjobs:dbjobs@127.0.0.1:5432/postgres"
PROBE_TIMEOUT_S = 3


class Refused(Exception):
    """The service answers but will not serve the suite: a setting is wrong, not a server down."""


@dataclass(frozen=True)
class Missing:
    what: str  # "Redis is not running at 127.0.0.1:6379"
    remedy: str  # "start it with docker compose up -d postgres redis"
    service: bool = False  # START_SERVICES brings it (else it must be installed)
    hint: str = ""  # one more line for the summary

    @property
    def reason(self) -> str:
        return f"{self.what}: {self.remedy}"


@dataclass(frozen=True)
class Need:
    """Something some tests need; ``probe`` says what is missing (and what to do), or None."""

    fixtures: frozenset[str]
    probe: Callable[[], Missing | None]
    marker: str | None = None  # the marker that says a test needs it, and is set when it does


def _where(url: str, default_port: int) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or default_port}"


def _not_running(service: str, where: str, hint: str = "") -> Missing:
    return Missing(
        f"{service} is not running at {where}", f"start it with {START_SERVICES}", True, hint
    )


def postgres_missing() -> Missing | None:
    where = _where(ADMIN_URL, 5432)

    async def connect() -> None:
        connection = await asyncpg.connect(ADMIN_URL, timeout=PROBE_TIMEOUT_S)
        await connection.close()

    try:
        asyncio.run(connect())
    except OSError:  # refused, timed out, unknown host
        hint = f"(for compose's PostgreSQL, also set TEST_POSTGRES_URL={COMPOSE_ADMIN_URL})"
        return _not_running("PostgreSQL", where, hint)
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise Refused(
            f"PostgreSQL at {where} refused the test suite: {error}. Set TEST_POSTGRES_URL "
            f"to a superuser's URL (for docker compose: {COMPOSE_ADMIN_URL})"
        ) from None
    return None


def redis_missing() -> Missing | None:
    where = _where(REDIS_BASE_URL, 6379)
    client = redis.Redis.from_url(
        REDIS_BASE_URL, socket_connect_timeout=PROBE_TIMEOUT_S, socket_timeout=PROBE_TIMEOUT_S
    )
    try:
        client.ping()
    except redis.AuthenticationError as error:
        raise Refused(
            f"Redis at {where} refused the test suite: {error}. Set TEST_REDIS_URL"
        ) from None
    except (redis.ConnectionError, redis.TimeoutError):
        return _not_running("Redis", where)
    except redis.RedisError as error:
        raise Refused(f"Redis at {where} refused the test suite: {error}") from None
    finally:
        client.close()
    return None


def postgres_binaries_missing() -> Missing | None:
    if all(os.access(PG_BIN / tool, os.X_OK) for tool in ("initdb", "pg_ctl")):
        return None
    return Missing(
        f"no initdb and pg_ctl in {PG_BIN} to start a private PostgreSQL server",
        "install the PostgreSQL 15 server or set TEST_PG_BIN",
    )


def redis_binary_missing() -> Missing | None:
    if os.access(REDIS_SERVER, os.X_OK):
        return None
    return Missing("no redis-server on PATH to start a private Redis server", "install Redis 7")


POSTGRES = Need(frozenset({"pg_database", "fresh_postgresql"}), postgres_missing, "postgres")
REDIS = Need(frozenset({"redis_space"}), redis_missing, "redis")
NEEDS = (
    POSTGRES,
    REDIS,
    Need(frozenset({"postgres_binaries"}), postgres_binaries_missing),
    Need(frozenset({"redis_server_binary"}), redis_binary_missing),
)
# Tests that reach a service in their own body instead of through a fixture. Better:
# have them ask for the fixture (pg_database here), or mark them, and drop them from here.
IN_BODY = {
    "tests/cli/test_outages.py::test_a_database_without_tables_says_to_migrate": (POSTGRES,),
}

MISSING = pytest.StashKey[Missing]()  # on an item: why it cannot run here
SKIPPED = pytest.StashKey[Counter[Missing]]()  # on the config: tests skipped, by cause


@dataclass
class Checker:
    """Probes each need at most once."""

    found: dict[Need, Missing | None] = field(default_factory=dict)

    def missing(self, need: Need) -> Missing | None:
        if need not in self.found:
            self.found[need] = need.probe()
        return self.found[need]

    def causes(self) -> list[Missing]:
        return [missing for need in NEEDS if (missing := self.found.get(need)) is not None]


def needs_of(item: pytest.Item) -> Iterable[Need]:
    names = set(getattr(item, "fixturenames", ()))
    in_body = IN_BODY.get(item.nodeid, ())
    for need in NEEDS:
        marked = need.marker is not None and item.get_closest_marker(need.marker) is not None
        if need.fixtures & names or marked or need in in_body:
            yield need


def mark(item: pytest.Item) -> None:
    """Give a test the marker of each service it needs, for ``-m`` to select on."""
    for need in needs_of(item):
        if need.marker is not None and item.get_closest_marker(need.marker) is None:
            item.add_marker(need.marker)


def check(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each item that cannot run here; under CI, stop the run instead."""
    config.stash[SKIPPED] = Counter()
    if config.option.collectonly:
        return
    checker = Checker()
    try:
        for item in items:
            for need in needs_of(item):
                missing = checker.missing(need)
                if missing is not None:
                    item.stash[MISSING] = missing
                    break
    except Refused as refusal:
        raise pytest.UsageError(str(refusal)) from None
    if checker.causes() and running_in_ci():
        causes = "".join(f"\n  {missing.reason}" for missing in checker.causes())
        raise pytest.UsageError(f"CI=true, and the tests cannot run here:{causes}")


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def skip_if_missing(item: pytest.Item) -> None:
    missing = item.stash.get(MISSING, None)
    if missing is not None:
        item.config.stash[SKIPPED][missing] += 1
        pytest.skip(missing.reason)


def summarize(reporter: pytest.TerminalReporter) -> None:
    """One block: what was not run, why, and what to start."""
    skipped = reporter.config.stash.get(SKIPPED, Counter())
    if not skipped:
        return
    reporter.ensure_newline()
    reporter.section("not run: missing services", yellow=True, bold=True)
    for missing, count in sorted(skipped.items(), key=lambda pair: pair[0].what):
        reporter.write_line(f"{count} test{'s' * (count != 1)} skipped: {missing.what}")
    if any(missing.service for missing in skipped):
        reporter.write_line(f"Start the services with: {START_SERVICES}")
    for line in dict.fromkeys(m.hint if m.service else m.remedy for m in skipped):
        if line:
            reporter.write_line(line[0].upper() + line[1:])
    reporter.write_line("With CI=true, a missing service fails the run instead.")
