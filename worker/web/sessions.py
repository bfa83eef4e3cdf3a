"""A dashboard login: a cookie that holds when it was issued and a random id, signed with a
key derived from ``JOBS_CONSOLE_TOKEN`` (the token itself never reaches the browser, and
changing it ends every session). It lasts ``JOBS_CONSOLE_SESSION_SECONDS``; logging out
ends it at once, for every console process: its id is kept in Redis as revoked until it
would have expired anyway."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

SESSION_COOKIE = "dbjobs_session"
CLOCK_SKEW_SECONDS = 60  # a session issued a little "in the future" by another console
_KEY_PURPOSE = b"dbjobs console session key"


@dataclass(frozen=True)
class Session:
    session_id: str
    issued_at: int

    def seconds_left(self, max_age: int, now: float) -> int:
        return max(0, int(self.issued_at + max_age - now))


def _signature(token: str, body: str) -> str:
    key = hmac.new(token.encode(), _KEY_PURPOSE, hashlib.sha256).digest()
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def issue(token: str, *, now: float | None = None) -> str:
    """A new session's cookie value: ``<issued at>.<id>.<signature>``."""
    body = f"{int(time.time() if now is None else now)}.{secrets.token_urlsafe(16)}"
    return f"{body}.{_signature(token, body)}"


def read(
    value: str | None, token: str, max_age: int, *, now: float | None = None
) -> Session | None:
    """The session a cookie value holds, if it is signed with this token and not expired
    (revocation is Redis's to say: ``is_revoked``)."""
    if not value or value.count(".") != 2:
        return None
    body, _, signature = value.rpartition(".")
    if not hmac.compare_digest(signature.encode(), _signature(token, body).encode()):
        return None
    issued, _, session_id = body.partition(".")
    if not issued.isdigit():
        return None
    now = time.time() if now is None else now
    if not now - max_age < int(issued) <= now + CLOCK_SKEW_SECONDS:
        return None
    return Session(session_id, int(issued))


def _revoked_key(session: Session) -> str:
    return f"dbjobs:console:revoked-session:{session.session_id}"


async def revoke(redis: Redis, session: Session, max_age: int) -> None:
    """End a session now: revoked until it would have expired (then it is refused anyway)."""
    left = session.seconds_left(max_age, time.time()) + CLOCK_SKEW_SECONDS
    await redis.set(_revoked_key(session), b"1", ex=left)


async def is_revoked(redis: Redis, session: Session) -> bool:
    return bool(await redis.exists(_revoked_key(session)))
