"""Bring a database to the current schema from Python, with the project's Alembic scripts.

The command line does the same with ``uv run alembic upgrade head``; the demo, the tests
and the benchmark call this instead. Synchronous on purpose: Alembic's async env.py runs
its own event loop.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration found beside the package, whatever the working directory."""
    ini, scripts = PROJECT_ROOT / "alembic.ini", PROJECT_ROOT / "migrations"
    if not ini.is_file() or not scripts.is_dir():
        raise FileNotFoundError(f"alembic.ini and migrations/ not found in {PROJECT_ROOT}")
    config = Config(str(ini))
    config.set_main_option("script_location", str(scripts))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
