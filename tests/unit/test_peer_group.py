"""Without the optional peers group the bench says how to get it, and runs the rest."""

from __future__ import annotations

import pytest

import bench.peers as group
from bench.peers import PeersMissing, require


def test_a_missing_peer_names_itself_and_the_command_that_installs_it(monkeypatch):
    monkeypatch.setattr(group, "find_spec", lambda name: None if name == "saq" else object())

    with pytest.raises(PeersMissing) as missing:
        require()

    assert str(missing.value) == (
        "the peers workload needs saq: install them with `uv sync --group bench`"
    )


def test_the_bench_goes_on_after_a_workload_that_cannot_run(monkeypatch):
    import asyncio

    from rich.console import Console

    from bench import cli

    async def unavailable(bench):
        raise PeersMissing(
            "the peers workload needs saq: install them with `uv sync --group bench`"
        )

    async def available(bench):
        return ["a row"]

    monkeypatch.setitem(cli.WORKLOADS, "peers", unavailable)
    monkeypatch.setitem(cli.WORKLOADS, "noop", available)
    console = Console(record=True, width=200)

    rows = asyncio.run(cli.run_workloads(None, ["peers", "noop"], console))

    assert rows == ["a row"]
    assert "peers: not run: the peers workload needs saq" in console.export_text()
