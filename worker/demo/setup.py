"""What ``jobs demo`` runs against: in-process Redis and SQLite, or the configured services.

Nothing here needs a server when ``DATABASE_URL`` and ``REDIS_URL`` are unset: the queue
is a fakeredis server inside the process and the database a SQLite file, migrated by the
same Alembic scripts as PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.engine import make_url

from domain.db import is_sqlite
from worker import schema
from worker.config import Settings, with_async_driver

# SQLite has a single writer: more jobs at once would only queue on its lock.
SQLITE_MAX_JOBS = 1
# Never reached by the in-process mode: anything that tried a real Redis would fail loudly.
IN_PROCESS_REDIS_URL = "redis://in-process.invalid:6379/0"
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_TIMEOUT = 3


class DemoError(Exception):
    """A failure worth one clear line to the user, and its exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class Target:
    """The database and queue one demo run uses."""

    database_url: str = field(repr=False)  # may hold a password
    redis_url: str | None = field(repr=False)  # None: an in-process Redis
    database_file: Path | None  # the SQLite file the demo owns, recreated on each run

    @property
    def in_process(self) -> bool:
        return self.redis_url is None

    def describe(self) -> dict[str, str]:
        """Where things live, passwords hidden."""
        if self.database_file is not None:
            database = f"SQLite file {self.database_file}"
        else:
            database = redact(self.database_url)
        queue = "in-process (fakeredis)" if self.redis_url is None else redact(self.redis_url)
        return {"database": database, "queue": queue}


def redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL we can parse: show its scheme only
        return url.split(":", 1)[0] + "://…"


def choose_target(environ: Mapping[str, str], database_file: str | Path) -> Target:
    """The services named in the environment, or in-process ones when neither is named."""
    database_url = environ.get("DATABASE_URL", "").strip()
    redis_url = environ.get("REDIS_URL", "").strip()
    if database_url and redis_url:
        return Target(with_async_driver(database_url), redis_url, None)
    if database_url or redis_url:
        given, missing = "DATABASE_URL", "REDIS_URL"
        if redis_url:
            given, missing = missing, given
        raise DemoError(
            f"{given} is set but {missing} is not: set both to run the demo against your "
            "services, or neither to run it in-process",
            EXIT_BAD_INPUT,
        )
    path = Path(database_file).expanduser().resolve()
    return Target(f"sqlite+aiosqlite:///{path}", None, path)


def demo_settings(target: Target) -> Settings:
    try:
        settings = Settings(
            database_url=target.database_url, redis_url=target.redis_url or IN_PROCESS_REDIS_URL
        )
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors(include_url=False)
        )
        raise DemoError(f"invalid settings: {problems}", EXIT_BAD_INPUT) from None
    if is_sqlite(target.database_url):
        return settings.model_copy(update={"max_jobs": SQLITE_MAX_JOBS})
    return settings


def prepare_database(target: Target) -> None:
    """A fresh SQLite file (or the configured database as is), migrated to head."""
    if target.database_file is not None:
        _remove_sqlite_file(target.database_file)
    try:
        schema.upgrade(target.database_url)
    except FileNotFoundError as error:
        raise DemoError(str(error)) from None
    except Exception as error:
        raise DemoError(
            f"could not migrate the database at {redact(target.database_url)}: {brief(error)}"
        ) from error


def _remove_sqlite_file(path: Path) -> None:
    if path.is_dir():
        raise DemoError(f"{path} is a directory, not a database file", EXIT_BAD_INPUT)
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)


def brief(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
