"""The suite on a machine without PostgreSQL and Redis: it runs the rest and says what to start.

Runs a small slice of the suite in a subprocess, with the services pointed at closed ports:
the suite itself, end to end, as a developer without services runs it.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import free_port
from worker.testing.processes import ROOT

SLICE = (
    "tests/unit/test_schemas.py",
    "tests/cli/test_help.py",
    "tests/integration/test_constraints.py",
    "tests/integration/test_queue_state.py",  # tests that need Redis alone
)
START = "docker compose up -d postgres redis"

pytestmark = pytest.mark.e2e


def run_slice(pg_port: int, redis_port: int, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "CI"}
    environment.update(
        TEST_POSTGRES_URL=f"postgresql://postgres@127.0.0.1:{pg_port}/postgres",
        TEST_REDIS_URL=f"redis://127.0.0.1:{redis_port}",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *SLICE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_services_the_rest_runs_and_one_block_says_what_to_start():
    pg_port, redis_port = free_port(), free_port()
    done = run_slice(pg_port, redis_port)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output
    counts = re.search(r"(\d+) passed, (\d+) skipped in", done.stdout)  # no failure, no error
    assert counts is not None, output
    passed, skipped = map(int, counts.groups())
    assert passed > 0
    after = done.stdout.split(" not run: missing services ", 1)[1].splitlines()[1:]
    block = "\n".join(after[: next(i for i, line in enumerate(after) if line.startswith("="))])
    assert len(block.splitlines()) <= 5, block
    pg_skipped = re.search(
        rf"(\d+) tests skipped: PostgreSQL is not running at 127.0.0.1:{pg_port}\n", block
    )
    redis_skipped = re.search(
        rf"(\d+) tests? skipped: Redis is not running at 127.0.0.1:{redis_port}\n", block
    )
    assert pg_skipped is not None, block
    assert redis_skipped is not None, block
    assert int(pg_skipped[1]) + int(redis_skipped[1]) == skipped
    assert f"Start the services with: {START}" in block
    reasons = re.findall(r"^SKIPPED \[(\d+)\] \S+: (.*)$", done.stdout, re.MULTILINE)
    assert {reason for _, reason in reasons} == {
        f"PostgreSQL is not running at 127.0.0.1:{pg_port}: start it with {START}",
        f"Redis is not running at 127.0.0.1:{redis_port}: start it with {START}",
    }
    assert sum(int(count) for count, _ in reasons) == skipped


def test_under_ci_a_missing_service_fails_the_run_before_any_test():
    pg_port, redis_port = free_port(), free_port()
    done = run_slice(pg_port, redis_port, CI="true")
    output = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "Traceback" not in output
    assert f"PostgreSQL is not running at 127.0.0.1:{pg_port}" in done.stderr
    assert f"Redis is not running at 127.0.0.1:{redis_port}" in done.stderr
    assert "passed" not in done.stdout


def test_no_test_skips_itself_for_another_reason():
    """Only a missing service may skip a test (tests/support/needs.py decides that)."""
    skipping = {"skip", "skipif", "importorskip", "xfail"}
    found = []
    for path in Path(ROOT, "tests").rglob("*.py"):
        if path.name == "needs.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in skipping:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
