"""The dashboard's forms: CSRF-protected always, behind the login when a token is set."""

from __future__ import annotations

import re

import httpx

from tests.web.conftest import TOKEN, run_queue

ADA = {"username": "ada", "email": "ada@example.com", "full_name": "Ada Lovelace"}


async def csrf_of(client: httpx.AsyncClient, path: str = "/failed") -> str:
    page = await client.get(path)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "the page has no form token"
    return found[1]


async def a_failure(client: httpx.AsyncClient, settings, headers=None) -> str:
    enqueued = await client.post(
        "/api/enqueue/start_run", json={"experiment_id": 5}, headers=headers or {}
    )
    await run_queue(settings)
    return str(enqueued.json()["job"]["job_id"])


async def test_a_form_needs_its_csrf_token(api, settings):
    job_id = await a_failure(api, settings)
    api.cookies.clear()
    stale = await api.post("/jobs/handle", data={"job_id": job_id})
    assert stale.status_code == 403
    token = await csrf_of(api)  # sets the cookie
    forged = await api.post("/jobs/handle", data={"job_id": job_id, "csrf": "guess"})
    assert forged.status_code == 403
    assert (await api.get("/api/failed")).json()["failed"] != []
    done = await api.post("/jobs/handle", data={"job_id": job_id, "csrf": token})
    assert done.status_code == 303
    assert (await api.get("/api/failed")).json()["failed"] == []


async def test_a_form_from_another_site_is_refused(api, settings):
    job_id = await a_failure(api, settings)
    token = await csrf_of(api)
    refused = await api.post(
        "/jobs/retry",
        data={"job_id": job_id, "csrf": token, "force": "true"},
        headers={"Origin": "http://evil.example"},
    )
    assert refused.status_code == 403


async def test_with_a_token_the_forms_need_a_login(guarded, settings):
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    job_id = await a_failure(guarded, settings, bearer)
    csrf = await csrf_of(guarded)
    assert (
        await guarded.post("/jobs/handle", data={"job_id": job_id, "csrf": csrf})
    ).status_code == 401
    wrong = await guarded.post("/login", data={"token": "nope", "csrf": csrf})
    assert wrong.status_code == 401
    login = await guarded.post("/login", data={"token": TOKEN, "csrf": csrf})
    assert login.status_code == 303
    session = guarded.cookies.get("dbjobs_session")
    assert session
    assert TOKEN not in session
    handled = await guarded.post("/jobs/handle", data={"job_id": job_id, "csrf": csrf})
    assert handled.status_code == 303
    assert (await guarded.get("/api/failed")).json()["failed"] == []
