"""history partitions: job_records and job_tries partitioned by enqueue time, a day each

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

Reviewed by hand. Both tables gain enqueued_at, the time the producer enqueued the job
(the rows already kept get their first start, the nearest time known), and are rebuilt
PARTITION BY RANGE (enqueued_at) on PostgreSQL: a partition per day from the oldest row's
day (at most DAYS_BACK days back; older rows go to the default partition) to DAYS_AHEAD
days ahead, and a default partition each. A key of a partitioned table holds its
partition key: job_records' is (job_id, enqueued_at), job_tries' (job_id, enqueued_at,
try_number), which leaves job_tries without its serial id, its job_id index (the key's
leading column serves it) and its foreign key (PostgreSQL would refuse to detach a day
of job_records that a day of job_tries refers to).

The rows are copied under an exclusive lock on the old tables (renamed aside, then
dropped): jobs wait for their history writes meanwhile, about 10 s a million rows here.
The secondary indexes are built afterwards, outside the migration's transaction, without
blocking writers: each on the partitioned table alone (ON ONLY, invalid until complete),
then CONCURRENTLY on each partition and attached to it. SQLite (the demo) gets the same
columns and keys, unpartitioned.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DAYS_BACK = 31
DAYS_AHEAD = 3
PARTITIONED = {'postgresql_partition_by': 'RANGE (enqueued_at)'}
# As in domain/models/bookkeeping.py, copied: a migration must not change with the model.
UNHANDLED_FAILURE = "status = 'failed' AND handled_at IS NULL"
HAS_PARENT = "parent_id IS NOT NULL"
STATES = "status IN ('retrying', 'succeeded', 'failed', 'cancelled')"
NOT_SUCCEEDED = "status <> 'succeeded'"  # 0004's partial index of the rest
# name: (columns, partial index condition)
RECORD_INDEXES: dict[str, tuple[list[str], str | None]] = {
    'ix_job_records_finished_at': (['finished_at'], None),
    'ix_job_records_status_finished_at': (['status', 'finished_at'], NOT_SUCCEEDED),
    'ix_job_records_function_finished_at': (['function', 'finished_at'], None),
    'ix_job_records_parent_status_finished_at': (
        ['parent_id', 'status', 'finished_at'], HAS_PARENT
    ),
    'ix_job_records_unhandled_failures': (['finished_at'], UNHANDLED_FAILURE),
}
RECORD_COLUMNS = (
    'job_id, function, status, parent_id, tries, duplicates, payload, result, error_type, '
    'error_message, retryable, worker, started_at, finished_at, duration_ms, '
    'next_retry_at, handled_at'
)
TRY_COLUMNS = (
    'job_id, try_number, worker, started_at, finished_at, duration_ms, error_type, '
    'error_message, retry_at'
)


def _postgresql() -> bool:
    return op.get_bind().dialect.name == 'postgresql'


def _record_columns() -> list[sa.Column]:
    return [
        sa.Column('job_id', sa.String(length=200), nullable=False),
        sa.Column('function', sa.String(length=100), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('parent_id', sa.String(length=200), nullable=True),
        sa.Column('tries', sa.Integer(), nullable=False),
        sa.Column('duplicates', sa.Integer(), server_default='0', nullable=False),
        sa.Column('payload', sa.JSON(), nullable=True),
        sa.Column('result', sa.JSON(), nullable=True),
        sa.Column('error_type', sa.String(length=200), nullable=True),
        sa.Column('error_message', sa.Text(), nullable=True),
        sa.Column('retryable', sa.Boolean(), nullable=True),
        sa.Column('worker', sa.String(length=100), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('duration_ms', sa.Integer(), nullable=False),
        sa.Column('next_retry_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True),
    ]


def _try_columns() -> list[sa.Column]:
    return [
        sa.Column('job_id', sa.String(length=200), nullable=False),
        sa.Column('try_number', sa.Integer(), nullable=False),
        sa.Column('worker', sa.String(length=100), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('duration_ms', sa.Integer(), nullable=False),
        sa.Column('error_type', sa.String(length=200), nullable=True),
        sa.Column('error_message', sa.Text(), nullable=True),
        sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True),
    ]


def _set_aside(table: str, indexes: Sequence[str]) -> str:
    """Rename ``table`` out of the way, its indexes dropped and its key's name freed."""
    for index in indexes:
        op.drop_index(index, table_name=table)
    aside = f'{table}_old'
    op.rename_table(table, aside)
    if _postgresql():
        op.execute(f'ALTER TABLE {aside} RENAME CONSTRAINT pk_{table} TO pk_{aside}')
    return aside


def upgrade() -> None:
    postgresql = _postgresql()
    if postgresql:
        op.execute('LOCK TABLE job_records, job_tries IN ACCESS EXCLUSIVE MODE')
    old_tries = _set_aside('job_tries', ['ix_job_tries_job_id'])
    old_records = _set_aside('job_records', list(RECORD_INDEXES))
    op.create_table(
        'job_records',
        *_record_columns(),
        sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(STATES, name=op.f('ck_job_records_status')),
        sa.PrimaryKeyConstraint('job_id', 'enqueued_at', name=op.f('pk_job_records')),
        **PARTITIONED,
    )
    op.create_table(
        'job_tries',
        *_try_columns(),
        sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            'job_id', 'enqueued_at', 'try_number', name=op.f('pk_job_tries')
        ),
        **PARTITIONED,
    )
    if postgresql:
        _make_partitions(old_records)
    op.execute(
        f'INSERT INTO job_records ({RECORD_COLUMNS}, enqueued_at) '
        f'SELECT {RECORD_COLUMNS}, started_at FROM {old_records}'
    )
    op.execute(
        f'INSERT INTO job_tries ({TRY_COLUMNS}, enqueued_at) '
        f'SELECT {", ".join("t." + c for c in TRY_COLUMNS.split(", "))}, r.enqueued_at '
        f'FROM {old_tries} t JOIN job_records r ON r.job_id = t.job_id '
        'WHERE true ON CONFLICT DO NOTHING'  # SQLite reads ON CONFLICT as the join's
    )
    op.drop_table(old_tries)
    op.drop_table(old_records)
    if postgresql:
        _index_partitions()
    else:
        for name, (columns, where) in RECORD_INDEXES.items():
            condition = sa.text(where) if where else None
            op.create_index(name, 'job_records', columns, sqlite_where=condition)


def _make_partitions(old_records: str) -> None:
    today = datetime.now(UTC).date()
    oldest = op.get_bind().scalar(sa.text(f'SELECT min(started_at) FROM {old_records}'))
    first = today
    if oldest is not None:
        first = min(today, max(today - timedelta(days=DAYS_BACK), oldest.astimezone(UTC).date()))
    for table in ('job_records', 'job_tries'):
        op.execute(f'CREATE TABLE {table}_default PARTITION OF {table} DEFAULT')
        day = first
        while day <= today + timedelta(days=DAYS_AHEAD):
            op.execute(
                f'CREATE TABLE {table}_p{day:%Y%m%d} PARTITION OF {table} '
                f"FOR VALUES FROM ('{_start(day)}') TO ('{_start(day + timedelta(days=1))}')"
            )
            day += timedelta(days=1)


def _start(day: date) -> str:
    return datetime.combine(day, time(), UTC).isoformat()


def _index_partitions() -> None:
    """Each index on the partitioned table alone, then built on each partition without
    blocking writers and attached: once every partition has it, it is valid."""
    partitions = [
        name
        for (name,) in op.get_bind().execute(
            sa.text(
                'SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid '
                "WHERE i.inhparent = CAST('job_records' AS regclass) ORDER BY 1"
            )
        )
    ]
    with op.get_context().autocommit_block():
        for name, (columns, where) in RECORD_INDEXES.items():
            condition = f' WHERE {where}' if where else ''
            keys = ', '.join(columns)
            op.execute(f'CREATE INDEX IF NOT EXISTS {name} ON ONLY job_records ({keys}){condition}')
            for partition in partitions:
                child = f'{partition}_{name.removeprefix("ix_job_records_")}'
                op.execute(
                    f'CREATE INDEX CONCURRENTLY IF NOT EXISTS {child} '
                    f'ON {partition} ({keys}){condition}'
                )
                op.execute(f'ALTER INDEX {name} ATTACH PARTITION {child}')


def downgrade() -> None:
    postgresql = _postgresql()
    if postgresql:
        op.execute('LOCK TABLE job_records, job_tries IN ACCESS EXCLUSIVE MODE')
    new_tries = _set_aside('job_tries', [])
    new_records = _set_aside('job_records', list(RECORD_INDEXES))
    # The tables as 0004 left them.
    op.create_table(
        'job_records',
        *_record_columns(),
        sa.CheckConstraint(STATES, name=op.f('ck_job_records_status')),
        sa.PrimaryKeyConstraint('job_id', name=op.f('pk_job_records')),
    )
    op.create_table(
        'job_tries',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        *_try_columns(),
        sa.ForeignKeyConstraint(
            ['job_id'], ['job_records.job_id'],
            name=op.f('fk_job_tries_job_id_job_records'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_job_tries')),
    )
    # One row per job id: the history finds a job by its id before it writes one.
    op.execute(
        f'INSERT INTO job_records ({RECORD_COLUMNS}) SELECT {RECORD_COLUMNS} '
        f'FROM {new_records} WHERE true ORDER BY enqueued_at ON CONFLICT DO NOTHING'
    )
    op.execute(
        f'INSERT INTO job_tries ({TRY_COLUMNS}) SELECT {TRY_COLUMNS} FROM {new_tries} '
        'ORDER BY enqueued_at, try_number'
    )
    op.drop_table(new_tries)
    op.drop_table(new_records)
    op.create_index(op.f('ix_job_tries_job_id'), 'job_tries', ['job_id'], unique=False)
    for name, (columns, where) in RECORD_INDEXES.items():
        condition = sa.text(where) if where else None
        op.create_index(
            name, 'job_records', columns, postgresql_where=condition, sqlite_where=condition
        )
