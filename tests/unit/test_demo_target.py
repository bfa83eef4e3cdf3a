"""Where ``dbjobs demo`` runs: in-process on a SQLite file, or on the services the environment
names, whose passwords it never shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.demo import choose_target
from worker.demo.scenario import DemoError


def test_the_target_follows_the_environment(tmp_path: Path) -> None:
    local = choose_target({}, tmp_path / "x.db")
    remote = choose_target(
        {"DATABASE_URL": "postgresql://u:hunter2@db/app", "REDIS_URL": "redis://:pw@q:6379/1"},
        "ignored.db",
    )
    assert (local.in_process, local.database_url) == (True, f"sqlite+aiosqlite:///{tmp_path}/x.db")
    assert remote.database_url == "postgresql+asyncpg://u:hunter2@db/app"
    assert "hunter2" not in str(remote.describe())
    assert ":pw@" not in str(remote.describe())
    with pytest.raises(DemoError, match="REDIS_URL is set but DATABASE_URL is not"):
        choose_target({"REDIS_URL": "redis://q"}, "x.db")
