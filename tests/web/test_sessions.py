"""Dashboard logins: a signed, time-limited session that logging out ends, for every
console that shares the Redis (the revoked id is kept there)."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.web.conftest import TOKEN
from worker.settings import Settings
from worker.web import sessions
from worker.web.sessions import SESSION_COOKIE

HOURS_8 = 8 * 3600


def test_a_session_is_read_back_only_while_it_lasts_and_only_with_its_token():
    now = time.time()
    value = sessions.issue(TOKEN, now=now)
    assert TOKEN not in value
    session = sessions.read(value, TOKEN, HOURS_8, now=now + HOURS_8 - 1)
    assert session is not None
    assert session.issued_at == int(now)
    assert sessions.read(value, TOKEN, HOURS_8, now=now + HOURS_8 + 1) is None  # expired
    assert sessions.read(value, "another token", HOURS_8, now=now) is None
    assert sessions.read(value, TOKEN, HOURS_8, now=now - 3600) is None  # issued in the future
    issued, session_id, signature = value.split(".")
    forged = f"{int(issued) + 3600}.{session_id}.{signature}"  # a later time, same signature
    assert sessions.read(forged, TOKEN, HOURS_8, now=now) is None
    for junk in ("", "abc", "1.2", "x.y.z", "1.2.3.4", value + "0"):
        assert sessions.read(junk, TOKEN, HOURS_8, now=now) is None
    assert sessions.issue(TOKEN, now=now) != value  # a new id every time


async def csrf_of(client: httpx.AsyncClient) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', (await client.get("/login")).text)
    assert found
    return found[1]


async def log_in(client: httpx.AsyncClient) -> str:
    client.cookies.delete(SESSION_COOKIE)
    login = await client.post("/login", data={"token": TOKEN, "csrf": await csrf_of(client)})
    assert login.status_code == 303
    assert f"Max-Age={HOURS_8}" in login.headers["set-cookie"]
    value = client.cookies.get(SESSION_COOKIE)
    assert value
    return value


async def cancel_form(client: httpx.AsyncClient, session: str | None) -> int:
    """A form that changes state, with the given session cookie: 401 without a live one."""
    client.cookies.delete(SESSION_COOKIE)
    if session is not None:
        client.cookies.set(SESSION_COOKIE, session)
    csrf = await csrf_of(client)
    response = await client.post("/jobs/cancel", data={"job_id": "no-such-job", "csrf": csrf})
    return response.status_code


async def test_a_logged_out_session_is_refused(guarded: httpx.AsyncClient):
    session = await log_in(guarded)
    assert await cancel_form(guarded, session) == 404  # past the login: no such job
    assert "Log out" in (await guarded.get("/")).text
    csrf = await csrf_of(guarded)
    logout = await guarded.post("/logout", data={"csrf": csrf})
    assert logout.status_code == 303
    assert re.match(f'{SESSION_COOKIE}="?"?; .*Max-Age=0', logout.headers["set-cookie"])
    assert await cancel_form(guarded, session) == 401  # the same cookie, sent again
    assert await cancel_form(guarded, await log_in(guarded)) == 404  # a new login works


async def test_an_expired_or_forged_session_is_refused(guarded: httpx.AsyncClient):
    expired = sessions.issue(TOKEN, now=time.time() - HOURS_8 - 1)
    assert await cancel_form(guarded, expired) == 401
    assert "Log in" in (await guarded.get("/")).text
    old_style = "0" * 64  # what the console set before sessions expired: refused
    assert await cancel_form(guarded, old_style) == 401
    other = sessions.issue("another token")
    assert await cancel_form(guarded, other) == 401
    assert await cancel_form(guarded, None) == 401


@pytest.mark.parametrize("seconds", [59, 31 * 86400])
def test_the_session_length_is_bounded(seconds):
    with pytest.raises(ValueError, match="console_session_seconds"):
        Settings(_env_file=None, console_session_seconds=seconds)  # type: ignore[call-arg]
