"""metric reads: the metrics' unique index covers the value, and values are finite

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Reviewed by hand. The unique constraint on (run_id, name, step) is rebuilt under the same
name with INCLUDE (value) on PostgreSQL, so that a run's summary and a downsampled history
read the index alone (index-only scans): 500 buckets of a million points cost PostgreSQL
0.30 s of CPU instead of 0.40 s with the table in cache and in step order (the plain
index's best case), and the table's pages (138 MB for 2 million points, against 86 MB
of index, 69 MB without the value) are never read. No second index: writers keep
maintaining one, 8 bytes wider per point. ON CONFLICT ON CONSTRAINT
uq_metrics_run_id_name_step still finds it. The rebuild holds an exclusive lock on
metrics while it runs (about 5 s per million rows on a busy 2-core machine).

A CHECK refuses NaN and the infinities, which the payload schemas already refuse: an
aggregate over a run (min, max, mean) is then always a number. PostgreSQL orders NaN above
every number, so the upper bound refuses it; SQLite cannot store NaN at all. It fails on a
table already holding such a value (none can have come through the jobs).
Batch mode keeps the SQLite path (the demo) working: SQLite cannot add a constraint.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNIQUE = 'uq_metrics_run_id_name_step'
# As in domain/models/tracker.py, copied: a migration must not change with the model.
FINITE = 'value >= -1.7976931348623157e308 AND value <= 1.7976931348623157e308'


def upgrade() -> None:
    with op.batch_alter_table('metrics') as batch:
        batch.create_check_constraint('value_finite', FINITE)
    if op.get_bind().dialect.name == 'postgresql':
        # Alembic's create_unique_constraint cannot name a column outside the key.
        op.execute(
            f'ALTER TABLE metrics DROP CONSTRAINT {UNIQUE}, '
            f'ADD CONSTRAINT {UNIQUE} UNIQUE (run_id, name, step) INCLUDE (value)'
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_constraint(UNIQUE, 'metrics', type_='unique')
        op.create_unique_constraint(UNIQUE, 'metrics', ['run_id', 'name', 'step'])
    with op.batch_alter_table('metrics') as batch:
        batch.drop_constraint(op.f('ck_metrics_value_finite'), type_='check')
