"""Bad input on every endpoint: schemathesis generates requests from the console's own
OpenAPI schema, valid and not, against a real uvicorn on the suite's services. None may
get a server error, or an answer its schema does not describe.

Each operation is driven with hypothesis directly (schemathesis' pytest plugin does not
load on pytest 9), a bounded number of examples each, derandomized: the same calls every
run. Then each operation's first valid request is sent again as the schema cannot say:
from a rebound host name (400), with a body over the cap (413), and with a NUL or a huge
value in each of its parameters and top-level body fields (a 4xx, never a 500)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.web.conftest import TOKEN, Served, serving
from worker.settings import Settings

EXAMPLES = 10  # per operation and mode, over 29 operations: about 530 calls
CAP = 1024 * 1024  # the fuzzed console's body cap: above what hypothesis makes, cheap to pass
REBIND = "rebind.example"
HOSTILE_VALUES = ("a\x00b", "9" * 5000, 10**30, -1)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture
def fuzzed(settings: Settings) -> Iterator[Served]:
    bounds = {"console_token": SecretStr(TOKEN), "console_max_body_bytes": CAP}
    with serving(settings.model_copy(update=bounds)) as console:
        yield console


def test_no_input_breaks_the_api(fuzzed: Served) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    calls: dict[str, int] = {}
    first_valid: dict[str, schemathesis.Case] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            _fuzz(strategy, calls, operation.label, mode, first_valid)
    assert sum(calls.values()) >= len(operations) * 2
    assert len(first_valid) == len(operations)
    hostile = sum(_beyond_the_schema(case, fuzzed) for case in first_valid.values())
    print(f"\nschemathesis: {sum(calls.values())} calls over {len(operations)} operations")
    print(f"then {hostile} hostile variants of their valid requests")


def _beyond_the_schema(case: schemathesis.Case, served: Served) -> int:
    """Send ``case`` again from a rebound host, over the body cap, and with a NUL or a huge
    value in each parameter and top-level body field; how many requests that made."""
    url = served.url + case.formatted_path
    port = urlsplit(url).port
    rebound = {"Host": f"{REBIND}:{port}", "Origin": f"http://{REBIND}:{port}"}
    refused = httpx.request(case.method, url, headers=rebound)
    assert (refused.status_code, refused.json()["error"]["type"]) == (400, "bad_input"), url
    sent = 1
    if case.method in ("POST", "PATCH"):
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        over = httpx.request(case.method, url, content=b" " * (CAP + 1), headers=headers)
        assert (over.status_code, over.json()["error"]["type"]) == (413, "too_large"), url
        sent += 1
    for variant in _variants(case):
        variant.call_and_validate(checks=CHECKS[:4], timeout=10)
        sent += 1
    return sent


def _variants(case: schemathesis.Case) -> Iterator[schemathesis.Case]:
    for where in ("path_parameters", "query", "body"):
        fields = getattr(case, where)
        if not isinstance(fields, dict):
            continue
        for name in fields:
            if name == "wait":
                continue  # no worker runs here: see _fuzz
            for value in HOSTILE_VALUES:
                variant = case.derive(keep_auth=True)  # its own copies of the three
                getattr(variant, where)[name] = value
                yield variant


def _fuzz(
    strategy: st.SearchStrategy[Any],
    calls: dict[str, int],
    label: str,
    mode: GenerationMode,
    first_valid: dict[str, schemathesis.Case],
) -> None:
    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # a failure is reported as found
        suppress_health_check=list(HealthCheck),
    )
    def call(case: schemathesis.Case) -> None:
        calls[label] = calls.get(label, 0) + 1
        if isinstance(case.query, dict) and "wait" in case.query:
            # No worker runs here: a wait would last its whole length (tests/web/test_api
            # covers it). Any value given, valid or not, becomes no wait at all.
            case.query["wait"] = 0
        if mode is GenerationMode.POSITIVE and case.headers and "Authorization" in case.headers:
            # Valid requests carry the token, so that they reach the route, not just its
            # guard; invalid ones keep whatever was generated (none, or a wrong one).
            case.headers["Authorization"] = f"Bearer {TOKEN}"
        case.call_and_validate(checks=CHECKS, timeout=10)
        if mode is GenerationMode.POSITIVE:
            first_valid.setdefault(label, case)

    try:
        call()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # An operation that takes nothing (GET /api/queue) has no invalid request to make.
