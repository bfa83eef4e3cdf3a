"""What every request meets before a route reads it (worker/web/guards.py), in-process: the
Host allow-list, the body cap (declared or counted, the body never read past it), the
token before the body, and the security headers. A body here is an async generator that
counts what the app pulls from it: httpx's ASGI transport hands the app a chunk only when
the app asks for one."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator

import orjson
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from tests.web.conftest import TOKEN, client_of
from worker.lanes import lane_queues
from worker.settings import Settings
from worker.web.app import create_app
from worker.web.guards import CSP, PAGE_BODY_BYTES, host_allowed

LIMIT = 64 * 1024
CHUNK = 16 * 1024
REBIND = "rebind.example:8000"
LOOPBACK = frozenset(("127.0.0.1", "localhost", "::1"))


class Pulled:
    """A request body of ``total`` bytes in chunks, counting the bytes the app pulled."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            chunk = b" " * min(CHUNK, self.total - self.pulled)
            self.pulled += len(chunk)
            yield chunk


async def queued(settings: Settings) -> int:
    redis = Redis.from_url(settings.redis_url.get_secret_value())
    try:
        return sum([int(await redis.zcard(lane)) for lane in lane_queues(settings.queue_name)])
    finally:
        await redis.aclose()


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.0.0.1:8000", True),
        ("localhost:1", True),
        ("LocalHost:65535", True),
        ("[::1]:8000", True),
        ("[::1]", True),
        ("[0:0:0:0:0:0:0:1]:80", True),
        (REBIND, False),
        ("rebind.example", False),
        ("localhost.rebind.example", False),
        ("127.0.0.1.nip.io:8000", False),
        ("localhost:", True),  # an empty port is the default port (RFC 9110)
        ("localhost:80:80", False),
        ("localhost:abc", False),
        ("[::1", False),
        ("[::1]80", False),
        ("[::1]:", True),
        ("[::2]:80", False),
        ("::1", False),  # an IPv6 address needs its brackets
        ("", False),
        (None, False),
    ],
)
def test_the_host_allow_list(header, allowed):
    assert host_allowed(header, LOOPBACK) is allowed
    assert host_allowed(header, frozenset({"*"}))


async def test_a_rebound_name_is_refused_for_changes_and_reads(api, settings):
    origin = {"Host": REBIND, "Origin": f"http://{REBIND}"}
    changed = await api.post(
        "/api/enqueue/update_profile", json={"profile_id": 1, "changes": {}}, headers=origin
    )
    assert changed.status_code == 400
    assert changed.json()["error"]["type"] == "bad_input"
    assert "JOBS_CONSOLE_ALLOWED_HOSTS" in changed.json()["error"]["message"]
    assert await queued(settings) == 0
    for path in ("/api/profiles", "/api/jobs", "/openapi.json", "/static/htmx.min.js"):
        assert (await api.get(path, headers={"Host": REBIND})).status_code == 400, path
    page = await api.get("/profiles/1", headers={"Host": REBIND})
    assert page.status_code == 400
    assert "text/html" in page.headers["content-type"]
    assert (await api.get("/api/profiles", headers={"Host": "127.0.0.1:8000"})).status_code == 200


async def test_the_console_answers_to_the_names_it_is_given(settings):
    named = settings.model_copy(update={"console_allowed_hosts": ("console.internal",)})
    async with client_of(create_app(named)) as client:
        assert (await client.get("/api/workers")).status_code == 400  # localhost: not listed
        answered = await client.get("/api/workers", headers={"Host": "console.internal:8000"})
        assert answered.status_code == 200


async def test_a_body_declared_too_large_is_refused_unread(settings):
    capped = settings.model_copy(update={"console_max_body_bytes": LIMIT})
    body = Pulled(100 * 1024 * 1024)
    headers = {"Content-Length": str(body.total), "Content-Type": "application/json"}
    async with client_of(create_app(capped)) as client:
        refused = await client.post("/api/enqueue/record_metrics", content=body, headers=headers)
    assert refused.status_code == 413
    assert refused.json()["error"]["type"] == "too_large"
    assert body.pulled == 0


async def test_a_chunked_body_is_cut_at_the_limit(settings):
    capped = settings.model_copy(update={"console_max_body_bytes": LIMIT})
    body = Pulled(100 * 1024 * 1024)
    async with client_of(create_app(capped)) as client:
        refused = await client.post(
            "/api/enqueue/record_metrics",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert refused.status_code == 413
        assert LIMIT < body.pulled <= LIMIT + CHUNK
        form = Pulled(10 * PAGE_BODY_BYTES)
        login = await client.post(
            "/login", content=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert login.status_code == 413
        assert "text/html" in login.headers["content-type"]
        assert PAGE_BODY_BYTES < form.pulled <= PAGE_BODY_BYTES + CHUNK
    assert await queued(settings) == 0


async def test_without_the_token_a_body_is_never_read(settings):
    guarded = settings.model_copy(update={"console_token": SecretStr(TOKEN)})
    async with client_of(create_app(guarded)) as client:
        for headers in ({"Content-Length": str(1024 * 1024)}, {}, {"Authorization": "Bearer x"}):
            body = Pulled(1024 * 1024)  # under the cap: only the token stops it
            headers["Content-Type"] = "application/json"
            refused = await client.post(
                "/api/enqueue/record_metrics", content=body, headers=headers
            )
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            assert body.pulled == 0


async def test_the_largest_batch_fits_under_the_default_cap(api, settings):
    assert settings.console_body_limit == settings.max_payload_bytes
    points = [{"name": "validation/loss", "step": n, "value": 0.123456789} for n in range(50_000)]
    body = orjson.dumps({"run_id": 1, "points": points})
    assert len(body) < settings.max_payload_bytes
    accepted = await api.post(
        "/api/enqueue/record_metrics", content=body, headers={"Content-Type": "application/json"}
    )
    assert accepted.status_code == 202
    over = body[:-2] + b" " * (settings.max_payload_bytes - len(body) + 1) + b"]}"
    refused = await api.post(
        "/api/enqueue/record_metrics", content=over, headers={"Content-Type": "application/json"}
    )
    assert refused.status_code == 413
    assert await queued(settings) == 1


async def test_every_answer_carries_the_content_security_policy(api):
    for path in ("/", "/jobs", "/api/queue", "/static/htmx.min.js", "/no-such-page"):
        response = await api.get(path)
        assert response.headers["content-security-policy"] == CSP, path
        assert response.headers["x-frame-options"] == "DENY"
    assert "script-src 'self';" in CSP
    assert "unsafe" not in CSP
    docs = await api.get("/docs")
    policy = docs.headers["content-security-policy"]
    inline = docs.text.split("<script>")[1].split("</script>")[0]
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy
    assert "unsafe" not in policy


def test_an_unlisted_host_name_is_bad_configuration():
    with pytest.raises(ValueError, match="no port"):
        Settings(_env_file=None, console_allowed_hosts="console.internal:8000")  # type: ignore[call-arg]
    given = Settings(_env_file=None, console_allowed_hosts="A.example, [::1],10.0.0.5")  # type: ignore[call-arg]
    assert given.console_allowed_hosts == ("a.example", "::1", "10.0.0.5")
    unset = Settings(_env_file=None, console_allowed_hosts="")  # type: ignore[call-arg]
    assert unset.console_allowed_hosts == ("127.0.0.1", "localhost", "::1")


async def test_a_client_that_sends_its_body_too_slowly_gets_a_408(settings):
    hurried = settings.model_copy(update={"console_body_timeout": 0.2})

    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"job_id": '
        await asyncio.sleep(5)
        yield b'"x"}'

    async with client_of(create_app(hurried)) as client:
        slow = await client.post(
            "/api/jobs/cancel", content=trickle(), headers={"Content-Type": "application/json"}
        )
    assert slow.status_code == 408
    assert slow.json()["error"]["type"] == "timeout"


async def test_every_change_of_state_on_the_api_declares_the_token_it_is_checked_for(guarded):
    document = (await guarded.get("/openapi.json")).json()
    unsafe = [
        (method, path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in ("post", "put", "patch", "delete")
    ]
    assert len(unsafe) >= 10
    for method, path in unsafe:
        assert document["paths"][path][method]["security"] == [{"HTTPBearer": []}], path
        concrete = path.replace("{profile_id}", "1")
        refused = await guarded.request(method.upper(), concrete, json={})
        assert refused.status_code == 401, path
