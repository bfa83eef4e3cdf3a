"""``dbjobs demo`` hands over to ``worker.demo.run`` and exits with its code."""

from __future__ import annotations

import sys
import types

from typer.testing import CliRunner

from worker.cli import app


def fake_demo(monkeypatch, code: int) -> list[dict[str, int]]:
    calls: list[dict[str, int]] = []

    def run(**options: int) -> int:
        calls.append(options)
        return code

    module = types.ModuleType("worker.demo")
    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "worker.demo", module)
    return calls


def test_demo_passes_the_profile_count_and_its_exit_code(monkeypatch):
    calls = fake_demo(monkeypatch, code=3)
    result = CliRunner().invoke(app, ["demo", "--profiles", "250"])
    assert (result.exit_code, calls) == (3, [{"profiles": 250}])


def test_demo_keeps_its_own_default(monkeypatch):
    calls = fake_demo(monkeypatch, code=0)
    assert CliRunner().invoke(app, ["demo"]).exit_code == 0
    assert calls == [{}]
