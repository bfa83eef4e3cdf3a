"""The settings a face starts from (the CLI's commands, and through ``dbjobs serve`` and
``dbjobs worker`` the console and the worker): read from the environment and ``.env``, their
URLs refused before anything connects when they cannot be used, and the services they
name told without passwords.

A setting that cannot be used is an ``UnusableSettings``, its message naming the setting
and never its password; each face tells it its own way (the CLI: exit code 2).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from worker.text import first_line, problems

if TYPE_CHECKING:
    from arq.connections import RedisSettings

    from worker.settings import Settings

EXPECTED_URL = {
    "REDIS_URL": "redis://[:password@]host[:port]/db",
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
        parts = urlsplit(url)
        parts.port  # noqa: B018  # urllib checks the port when it is read
    except ValueError as problem:
        return reason(problem)
    if not parts.scheme:
        return "it has no scheme://"
    return None


def checked_redis_settings(settings: Settings) -> RedisSettings:
    """``worker.bootstrap.redis_settings``, with a ``REDIS_URL`` arq refuses refused as an
    ``UnusableSettings``."""
    from worker.bootstrap import redis_settings

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
