"""The console's API on the suite's PostgreSQL and Redis, jobs run by a real arq worker."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from tests.web.conftest import TOKEN, client_of, run_queue
from worker.settings import Settings
from worker.web.app import create_app

QUEUE = Settings.model_fields["queue_name"].default
ADA = {"username": "ada", "email": "ada@example.com", "full_name": "Ada Lovelace"}


async def queued(settings: Settings) -> int:
    redis = Redis.from_url(settings.redis_url.get_secret_value())
    try:
        return int(await redis.zcard(QUEUE))
    finally:
        await redis.aclose()


async def test_an_enqueued_job_runs_and_its_result_is_read_back(api, settings):
    response = await api.post("/api/enqueue/create_profile", json=ADA)
    assert response.status_code == 202
    job = response.json()["job"]
    assert (job["state"], job["function"], response.json()["deduplicated"]) == (
        "queued",
        "create_profile",
        False,
    )
    await run_queue(settings)
    page = (await api.get(f"/api/jobs/{job['job_id']}")).json()
    assert page["job"]["state"] == "succeeded"
    assert page["record"]["worker"]
    profile_id = page["job"]["result"]["id"]
    profile = (await api.get(f"/api/profiles/{profile_id}")).json()
    assert profile["username"] == "ada"
    listed = (await api.get("/api/profiles", params={"username": "ad"})).json()
    assert [p["id"] for p in listed] == [profile_id]


async def test_an_enqueue_no_replica_acknowledged_is_a_503_to_try_again(settings):
    asked = settings.model_copy(update={"enqueue_replicas": 1, "enqueue_replica_timeout": 0.05})
    async with client_of(create_app(asked)) as api:
        response = await api.post("/api/enqueue/create_profile", json=ADA)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "acknowledged 1 job(s) within 50 ms" in response.json()["error"]["message"]


async def test_a_bad_payload_names_each_field_and_enqueues_nothing(api, settings):
    response = await api.post(
        "/api/enqueue/record_metric",
        json={"run_id": 0, "name": "loss", "step": -3, "value": 1, "colour": "red"},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "bad_input"
    told = " | ".join(error["problems"])
    for field in ("run_id", "step", "colour: unknown field"):
        assert field in told
    assert await queued(settings) == 0
    not_an_object = await api.post("/api/enqueue/record_metric", json=[1, 2])
    assert not_an_object.status_code == 422
    assert await queued(settings) == 0


async def test_an_idempotency_key_enqueues_a_request_once(api, settings):
    headers = {"Idempotency-Key": "import-42"}
    first = await api.post("/api/enqueue/create_profile", json=ADA, headers=headers)
    again = await api.post("/api/enqueue/create_profile", json=ADA, headers=headers)
    assert first.json()["job"]["job_id"] == again.json()["job"]["job_id"] == "import-42"
    assert (first.json()["deduplicated"], again.json()["deduplicated"]) == (False, True)
    other = await api.post(
        "/api/enqueue/create_profile", json={**ADA, "username": "bob"}, headers=headers
    )
    assert other.status_code == 409
    assert "another payload" in other.json()["error"]["message"]
    assert await queued(settings) == 1
    spaced = await api.post(
        "/api/enqueue/create_profile", json=ADA, headers={"Idempotency-Key": "a b"}
    )
    assert spaced.status_code == 422


async def test_wait_returns_the_outcome(api, settings):
    async def worker_soon() -> None:
        await asyncio.sleep(0.3)
        await run_queue(settings)

    response, _ = await asyncio.gather(
        api.post("/api/enqueue/create_profile", json=ADA, params={"wait": 20}), worker_soon()
    )
    assert response.status_code == 200
    assert response.json()["job"]["state"] == "succeeded"
    assert response.json()["job"]["result"]["id"] >= 1


async def test_profile_update_goes_through_its_job(api, settings):
    created = await api.post("/api/profiles", json=ADA)
    await run_queue(settings)
    profile_id = (await api.get(f"/api/jobs/{created.json()['job']['job_id']}")).json()["job"][
        "result"
    ]["id"]
    bad = await api.patch(f"/api/profiles/{profile_id}", json={"version": 3})
    assert bad.status_code == 422
    assert "read-only" in bad.json()["error"]["message"]
    update = await api.patch(f"/api/profiles/{profile_id}", json={"bio": "Likes queues"})
    assert update.status_code == 202
    await run_queue(settings)
    profile = (await api.get(f"/api/profiles/{profile_id}")).json()
    assert (profile["bio"], profile["version"]) == ("Likes queues", 2)
    missing = await api.get("/api/profiles/999")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "profile 999 not found"


async def test_a_failure_is_listed_retried_and_handled(api, settings):
    failed = await api.post("/api/enqueue/start_run", json={"experiment_id": 1})
    job_id = failed.json()["job"]["job_id"]
    await run_queue(settings)
    listed = (await api.get("/api/failed")).json()["failed"]
    assert [job["job_id"] for job in listed] == [job_id]
    refused = await api.post("/api/jobs/retry", json={"job_id": job_id})
    assert refused.status_code == 409
    assert "ExperimentNotFound" in refused.json()["error"]["message"]
    retried = await api.post("/api/jobs/retry", json={"job_id": job_id, "force": True})
    assert retried.status_code == 202
    assert retried.json()["job"]["job_id"] == f"{job_id}:retry:1"
    # The retry handled its original: nothing is left to mark.
    assert (await api.get("/api/failed")).json()["failed"] == []
    handled = await api.post("/api/jobs/handle", json={"job_ids": [job_id]})
    assert handled.json() == {"handled": 0}
    neither = await api.post("/api/jobs/handle", json={})
    assert neither.status_code == 422
    unknown = await api.post("/api/jobs/retry", json={"job_id": "nope"})
    assert unknown.status_code == 404


async def test_a_waiting_job_is_cancelled_once(api, settings):
    job_id = (await api.post("/api/enqueue/create_profile", json=ADA)).json()["job"]["job_id"]
    cancelled = await api.post("/api/jobs/cancel", json={"job_id": job_id})
    assert cancelled.json() == {"job_id": job_id, "state": "cancelled"}
    assert await queued(settings) == 0
    assert (await api.get(f"/api/jobs/{job_id}")).json()["job"]["state"] == "cancelled"
    again = await api.post("/api/jobs/cancel", json={"job_id": job_id})
    assert again.status_code == 404
    assert (await api.get("/api/jobs/nope")).status_code == 404


async def test_the_queue_overview_counts_what_waits_and_what_ended(api, settings):
    for n in range(3):
        await api.post(
            "/api/enqueue/create_profile",
            json={**ADA, "username": f"user{n}", "email": f"user{n}@example.com"},
        )
    before = (await api.get("/api/queue")).json()
    assert (before["total"], before["waiting_by_function"]) == (3, {"create_profile": 3})
    assert before["running"] == []
    await run_queue(settings)
    after = (await api.get("/api/queue")).json()
    assert after["total"] == 0
    assert after["last_hour"] == {"succeeded": 3}
    assert after["jobs_per_second"] == pytest.approx(3 / 60, abs=0.01)


async def test_the_console_serves_the_queues_prometheus_metrics(api, settings):
    for n in range(2):
        enqueued = await api.post(
            "/api/enqueue/create_profile",
            json={**ADA, "username": f"metrics{n}", "email": f"metrics{n}@example.com"},
        )
        assert enqueued.is_success
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    assert samples[("dbjobs_queue_jobs", (("state", "ready"),))] == 2
    assert samples[("dbjobs_workers_alive", ())] == 0
    await run_queue(settings)
    after = {
        sample.labels.get("state"): sample.value
        for family in text_string_to_metric_families((await api.get("/metrics")).text)
        for sample in family.samples
        if sample.name == "dbjobs_queue_jobs"
    }
    assert after["ready"] == 0
    assert "/metrics" not in (await api.get("/openapi.json")).json()["paths"]


async def test_the_history_is_read_a_page_at_a_time(api, settings):
    for n in range(7):
        await api.post(
            "/api/enqueue/create_profile",
            json={**ADA, "username": f"page{n}", "email": f"page{n}@example.com"},
        )
    await run_queue(settings)
    seen: list[str] = []
    cursor = None
    ours = {"function": "create_profile"}  # a burst worker may run a cron tick too
    for _ in range(4):
        params = {"limit": 3, **ours, **({"before": cursor} if cursor else {})}
        page = (await api.get("/api/jobs", params=params)).json()
        seen += [job["job_id"] for job in page["jobs"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7
    everything = (await api.get("/api/jobs", params={"limit": 100, **ours})).json()["jobs"]
    assert seen == [job["job_id"] for job in everything]
    bad = await api.get("/api/jobs", params={"before": "not-a-cursor"})
    assert bad.status_code == 422


async def test_experiments_are_listed_with_their_runs(api, settings):
    await api.post("/api/enqueue/create_profile", json=ADA)
    await run_queue(settings)
    await api.post("/api/enqueue/create_experiment", json={"owner_id": 1, "name": "baseline"})
    await run_queue(settings)
    await api.post("/api/enqueue/start_run", json={"experiment_id": 1, "seed": 7})
    await run_queue(settings)
    listed = (await api.get("/api/experiments", params={"owner_id": 1})).json()
    assert [(e["name"], e["run_count"], e["state"]) for e in listed] == [("baseline", 1, "running")]
    one = (await api.get("/api/experiments/1")).json()
    assert [(r["seed"], r["state"]) for r in one["runs"]] == [(7, "running")]
    assert (await api.get("/api/experiments", params={"status": "done"})).status_code == 422


async def test_with_a_token_every_change_needs_it(guarded):
    refused = await guarded.post("/api/enqueue/create_profile", json=ADA)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    wrong = await guarded.post(
        "/api/jobs/handle", json={"all": True}, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    allowed = await guarded.post(
        "/api/enqueue/create_profile", json=ADA, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert allowed.status_code == 202
    assert (await guarded.get("/api/queue")).json()["total"] == 1  # reads stay open
    for path in ("/api/queue", "/openapi.json", "/", "/jobs", "/login"):
        assert TOKEN not in (await guarded.get(path)).text


async def test_a_request_from_another_site_is_refused(api, settings):
    response = await api.post(
        "/api/enqueue/create_profile", json=ADA, headers={"Origin": "http://evil.example"}
    )
    assert response.status_code == 403
    fetched = await api.post(
        "/api/jobs/handle", json={"all": True}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert fetched.status_code == 403
    same = await api.post(
        "/api/enqueue/create_profile", json=ADA, headers={"Origin": "http://localhost"}
    )
    assert same.status_code == 202
    assert await queued(settings) == 1


async def test_no_secret_in_any_answer(api, settings):
    secrets = [settings.database_url.get_secret_value(), settings.redis_url.get_secret_value()]
    for path in ("/api/queue", "/openapi.json", "/", "/jobs", "/workers", "/api/jobs/x"):
        text = (await api.get(path)).text
        assert not any(secret in text for secret in secrets), path


async def test_every_refusal_has_one_shape(api: httpx.AsyncClient):
    for response in (
        await api.get("/api/jobs", params={"limit": 0}),
        await api.get("/api/profiles/0"),
        await api.post(
            "/api/jobs/cancel", content=b"{not json", headers={"content-type": "application/json"}
        ),
    ):
        assert response.status_code == 422
        assert set(response.json()) == {"error"}
        assert response.json()["error"]["type"] == "bad_input"


async def test_a_job_id_with_slashes_and_markup_is_read_and_shown_literally(api, settings):
    key = "import/2026<b>bold</b>&amp;"
    headers = {"Idempotency-Key": key}
    assert (await api.post("/api/enqueue/create_profile", json=ADA, headers=headers)).is_success
    quoted = quote(key, safe="")
    assert (await api.get(f"/api/jobs/{quoted}")).json()["job"]["job_id"] == key
    page = (await api.get(f"/jobs/{quoted}")).text
    assert "import/2026&lt;b&gt;bold&lt;/b&gt;&amp;amp;" in page
    assert "<b>bold</b>" not in page


async def test_a_unique_prefix_of_a_job_id_is_read_and_cancelled(api, settings):
    job_id = (await api.post("/api/enqueue/create_profile", json=ADA)).json()["job"]["job_id"]
    read = await api.get(f"/api/jobs/{job_id[:12]}")
    assert read.status_code == 200
    assert read.json()["job"]["job_id"] == job_id
    cancelled = await api.post("/api/jobs/cancel", json={"job_id": job_id[:12]})
    assert cancelled.json()["state"] == "cancelled"
    assert await queued(settings) == 0
    unknown = await api.get("/api/jobs/0ddba11")
    assert unknown.status_code == 404


async def test_state_filters_and_an_unknown_parameter_is_refused_by_name(api, settings):
    await api.post("/api/enqueue/start_run", json={"experiment_id": 1})
    await run_queue(settings)
    await api.post("/api/enqueue/create_profile", json=ADA)
    await run_queue(settings)
    failed = (await api.get("/api/jobs", params={"state": "failed"})).json()["jobs"]
    assert [job["function"] for job in failed] == ["start_run"]
    for path, params in [
        ("/api/jobs", {"status": "failed"}),
        ("/api/failed", {"limit": 5, "stat": "x"}),
        ("/api/queue/jobs", {"fn": "x"}),
        ("/api/experiments", {"status": "running"}),
        ("/api/queue", {"head": 1}),
    ]:
        refused = await api.get(path, params=params)
        assert refused.status_code == 422, (path, refused.text)
        unknown = sorted(set(params) - {"limit"})
        assert refused.json()["error"]["message"] == (
            "invalid input: " + "; ".join(f"{name}: unknown parameter" for name in unknown)
        ), refused.text
