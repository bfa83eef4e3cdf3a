"""Alembic environment, async: the same engine setup as the application."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

import domain.models  # noqa: F401  (registers every table on the metadata)
from domain.db import Base, create_engine, is_sqlite
from domain.repositories.history_partitions import is_partition

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    """A URL handed over by the caller (tests, the demo) wins over DATABASE_URL."""
    given = config.attributes.get("database_url")
    if given:
        return str(given)
    from worker.settings import Settings

    return Settings().database_url.get_secret_value()


def _include_name(name: str | None, type_: str, _parents: object) -> bool:
    """The history's partitions come and go with the days (the prune makes and drops
    them): the models describe the partitioned tables, and those alone are compared."""
    return not (type_ == "table" and name is not None and is_partition(name))


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=Base.metadata,
        compare_type=True,
        compare_server_default=True,
        include_name=_include_name,
        # SQLite alters tables by copying them; "batch" mode does that for us.
        render_as_batch=is_sqlite(url or str(connection.engine.url if connection else "")),
        literal_binds=connection is None,
    )


def run_offline() -> None:
    _configure(url=database_url())
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_engine(database_url(), pool_size=1)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
