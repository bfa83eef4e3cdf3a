"""Bad input on every endpoint: schemathesis generates requests from the console's own
OpenAPI schema, valid and not, against a real uvicorn on the suite's services. None may
get a server error, or an answer its schema does not describe.

Each operation is driven with hypothesis directly (schemathesis' pytest plugin does not
load on pytest 9), a bounded number of examples each, derandomized: the same calls every
run."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.web.conftest import TOKEN, Served

EXAMPLES = 10  # per operation and mode, over 29 operations: about 530 calls
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def test_no_input_breaks_the_api(served_with_token: Served) -> None:
    schema = schemathesis.openapi.from_url(f"{served_with_token.url}/openapi.json")
    calls: dict[str, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            _fuzz(strategy, calls, operation.label, mode)
    assert sum(calls.values()) >= len(operations) * 2
    print(f"\nschemathesis: {sum(calls.values())} calls over {len(operations)} operations")


def _fuzz(
    strategy: st.SearchStrategy[Any], calls: dict[str, int], label: str, mode: GenerationMode
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

    try:
        call()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # An operation that takes nothing (GET /api/queue) has no invalid request to make.
