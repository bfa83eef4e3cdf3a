"""The settings a face starts from (the CLI's commands, and through ``dbjobs serve`` and
``dbjobs worker`` the console and the worker): read from the environment and ``.env``, their
URLs refused before anything connects when they cannot be used, and the services they
name told without passwords.

A setting that cannot be used is an ``UnusableSettings``, its message naming the setting
and never its password; each face tells it its own way (the CLI: exit code 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from worker.text import first_line, problems

if TYPE_CHECKING:
    from arq.connections import RedisSettings

    from worker.settings import Settings

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
EXPECTED_URL = {
    "REDIS_URL": "redis://[:password@]host[:port]/db, or "
    "redis+sentinel://[:password@]host[:port][,host[:port]...]/master[/db]",
    "DATABASE_URL": "postgresql://user[:password]@host[:port]/name",
}


class UnusableSettings(Exception):
    """Settings that cannot be used (a value the schema refuses, a URL that cannot be read);
    nothing was connected to."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def load_settings() -> Settings:
    """The settings, each URL readable; else an ``UnusableSettings`` naming what is wrong."""
    from pydantic import ValidationError

    from worker.settings import Settings

    try:
        settings = Settings()
    except ValidationError as problem:
        details = "; ".join(problems(problem))
        raise UnusableSettings(f"invalid configuration (environment or .env): {details}") from None
    _refuse_unreadable_urls(settings)
    return settings


def _refuse_unreadable_urls(settings: Settings) -> None:
    """A URL urllib cannot read is refused before anything connects.

    Only urllib here: SQLAlchemy's and arq's own parsers cost 0.5 s and 0.25 s of imports,
    so each runs where its service is opened (a producer never loads SQLAlchemy).
    """
    for name, secret in (
        ("REDIS_URL", settings.redis_url),
        ("DATABASE_URL", settings.database_url),
    ):
        problem = _url_problem(secret.get_secret_value())
        if problem is not None:
            raise unusable_url(name, "a URL", problem, settings)


def _url_problem(url: str) -> str | None:
    if not url.strip():
        return "it is empty"
    try:
        if urlsplit(url).scheme == SENTINEL_SCHEME:
            sentinel_url(url)
            return None
        parts = urlsplit(url)
        parts.port  # noqa: B018  # urllib checks the port when it is read
    except ValueError as problem:
        return reason(problem)
    if not parts.scheme:
        return "it has no scheme://"
    return None


@dataclass(frozen=True)
class SentinelUrl:
    """A ``REDIS_URL`` naming a primary that Redis Sentinel watches over: where to ask
    (the sentinels), whom to ask for (the master's name), and the credentials and logical
    database of the data nodes (the sentinels are asked without a password)."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    database: int
    username: str | None
    password: str | None = field(repr=False)


def sentinel_url(url: str) -> SentinelUrl | None:
    """``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db]``, the
    form redis-sentinel-url, RedisVL and Prefect read (port 26379 unless given); None for
    any other scheme. Raises ``ValueError`` naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        return None
    if parts.query or parts.fragment:
        raise ValueError("a Sentinel URL takes no ?options or #fragment")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    sentinels = tuple(_sentinel_address(given) for given in hosts.split(","))
    path = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    if not path or len(path) > 2:
        raise ValueError("name the master after the sentinels: /master or /master/db")
    database = path[1] if len(path) == 2 else "0"
    if not database.isdigit():
        raise ValueError(f"the logical database must be a number, not {database!r}")
    username, has_password, password = userinfo.partition(":")
    return SentinelUrl(
        sentinels=sentinels,
        master=unquote(path[0]),
        database=int(database),
        username=unquote(username) or None,
        password=unquote(password) if has_password and password else None,
    )


def _sentinel_address(given: str) -> tuple[str, int]:
    host, _, port = given.strip().partition(":")
    port = port or str(SENTINEL_PORT)
    if not host or "[" in host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{given.strip()!r} is not a sentinel's host[:port] (no IPv6 here)")
    return host, int(port)


def checked_redis_settings(settings: Settings) -> RedisSettings:
    """``worker.redis_connection.redis_settings``, with a ``REDIS_URL`` arq refuses refused as an
    ``UnusableSettings``."""
    from worker.redis_connection import redis_settings

    try:
        return redis_settings(settings)
    except (ValueError, RuntimeError) as problem:  # arq raises RuntimeError for a bad scheme
        raise unusable_url("REDIS_URL", "a Redis URL", reason(problem), settings) from None


def unusable_url(name: str, kind: str, why: str, settings: Settings) -> UnusableSettings:
    message = f"{name} is not {kind}: {why} (expected {EXPECTED_URL[name]})"
    return UnusableSettings(scrub(message, settings))


def reason(problem: BaseException) -> str:
    """What went wrong with a service or a setting, in a line."""
    return first_line(problem, 300)


# The helpers below speak on error paths: they never raise, whatever the URLs hold.


def redis_address(settings: Settings) -> str:
    try:
        sentinel = sentinel_url(settings.redis_url.get_secret_value())
        if sentinel is not None:
            hosts = ",".join(f"{host}:{port}" for host, port in sentinel.sentinels)
            return f"{sentinel.master}/{sentinel.database} via sentinels {hosts}"
        parts = urlsplit(settings.redis_url.get_secret_value())
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or '/0'}"
    except ValueError:
        return "the address in REDIS_URL"


def database_address(settings: Settings) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(settings.database_url.get_secret_value())
    except (ArgumentError, ValueError):
        return "the address in DATABASE_URL"
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def scrub(text: str, settings: Settings) -> str:
    """Belt and braces: whatever a library put in a message, no password is told."""
    for secret in (settings.database_url, settings.redis_url):
        url = secret.get_secret_value()
        if url:
            text = text.replace(url, "<url>")
        password = _password(url)
        if password:
            text = text.replace(password, "***").replace(unquote(password), "***")
    return text


def _password(url: str) -> str | None:
    """The password in ``url``, also when urllib refuses the URL for its host or port."""
    try:
        return urlsplit(url).password
    except ValueError:
        # urllib splits the netloc off before it checks the host: the userinfo is
        # still everything before the netloc's last "@".
        netloc = re.split(r"[/?#]", url.partition("://")[2], maxsplit=1)[0]
        return netloc.rpartition("@")[0].partition(":")[2] or None
