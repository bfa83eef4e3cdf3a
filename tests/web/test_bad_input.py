"""Malformed paths, queries, cursors and forms: each is a 422 that names the parameter, never
a 500. A paging cursor's time out of range once in UTC, a NUL in a job id (PostgreSQL
refuses it in text), wherever a job id comes in."""

from __future__ import annotations

import base64
from urllib.parse import quote

import orjson
import pytest

from worker.lanes import lane_queue


def _cursor(finished_at: str, job_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([finished_at, job_id])).decode().rstrip("=")


@pytest.mark.parametrize(
    ("method", "path", "body", "named"),
    [
        ("GET", "/api/jobs?before=" + _cursor("0001-01-01T00:00:00+14:00", "x"), None, "before"),
        ("GET", "/api/jobs?before=" + _cursor("9999-12-31T23:59:59-14:00", "x"), None, "before"),
        ("GET", "/api/jobs?before=" + _cursor("2026-01-01T00:00:00", "x"), None, "before"),
        ("GET", "/api/jobs?before=" + _cursor("2026-01-01T00:00:00Z", "a\x00"), None, "before"),
        ("GET", "/jobs?before=" + _cursor("0001-01-01T00:00:00+14:00", "x"), None, "before"),
        ("GET", "/api/jobs/" + quote("a\x00b"), None, "job_id"),
        ("GET", "/jobs/" + quote("a\x00b"), None, "job_id"),
        ("GET", "/jobs?job_id=" + quote("a\x00"), None, "job_id"),
        ("GET", "/api/children?parent_id=" + quote("a\x00"), None, "parent_id"),
        ("POST", "/api/jobs/retry", {"job_id": "a\x00"}, "job_id"),
        ("POST", "/api/jobs/cancel", {"job_id": "a\x00"}, "job_id"),
        ("POST", "/api/jobs/handle", {"job_ids": ["a\x00"]}, "job_ids.0"),
    ],
)
async def test_a_malformed_parameter_is_a_422_that_names_it(api, method, path, body, named):
    response = await api.request(method, path, json=body)
    assert response.status_code == 422
    told = response.json()["error"]["message"] if path.startswith("/api") else response.text
    assert f"{named}: " in told


async def test_a_nul_in_a_form_is_a_422(api):
    page = await api.get("/login")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    response = await api.post("/jobs/handle", data={"job_id": "a\x00", "csrf": csrf})
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("job", "payload", "named"),
    [  # what schemathesis found: an integer JSON cannot carry into the queue (a 500 once)
        (
            "record_metric",
            {"run_id": 1, "name": "loss", "step": 1, "value": 1.0, "late_seconds": 2**64},
            "late_seconds",
        ),
        (
            "update_profile",
            {"profile_id": 1, "changes": {"bio": "b"}, "expected_version": 2**63},
            "expected_version",
        ),
        ("fail_stale_runs", {"idle_seconds": 2**64}, "idle_seconds"),
        ("prune_job_history", {"keep_days": 10**9}, "keep_days"),
    ],
)
async def test_an_integer_beyond_its_bound_is_a_422(api, job, payload, named):
    response = await api.post(f"/api/enqueue/{job}", json=payload)
    assert response.status_code == 422
    assert response.json()["error"]["problems"][0].startswith(f"{named}: ")


async def test_a_lane_is_chosen_per_request_and_an_unknown_one_is_a_422(api, redis, settings):
    sent = await api.post(
        "/api/enqueue/finish_run?lane=bulk", json={"run_id": 4, "status": "completed"}
    )
    unknown = await api.post(
        "/api/enqueue/finish_run?lane=fast", json={"run_id": 5, "status": "completed"}
    )

    assert sent.status_code == 202
    job_id = sent.json()["job"]["job_id"]
    assert await redis.zscore(lane_queue(settings.queue_name, "bulk"), job_id) is not None
    assert unknown.status_code == 422
    assert "lane" in unknown.text
