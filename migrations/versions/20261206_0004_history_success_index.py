"""job history: successes leave the (status, finished_at) index

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

Reviewed by hand. ix_job_records_status_finished_at becomes partial, WHERE status <>
'succeeded': every job's success wrote an entry there (80 bytes of WAL and a B-tree
insert per job) that no read needs. A list of successes newest first reads
ix_job_records_finished_at, where nearly every row is one; the prune of old successes
reads the same range. The failures, retries and cancellations a status filter looks for
are all still in the index. No other index changes. The rebuild locks job_records
against writes while it runs (about a second per million rows).
Batch mode keeps the SQLite path (the demo) working.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = 'ix_job_records_status_finished_at'
# As in domain/models/bookkeeping.py, copied: a migration must not change with the model.
NOT_SUCCEEDED = "status <> 'succeeded'"


def upgrade() -> None:
    with op.batch_alter_table('job_records') as batch:
        batch.drop_index(INDEX)
        batch.create_index(
            INDEX,
            ['status', 'finished_at'],
            postgresql_where=sa.text(NOT_SUCCEEDED),
            sqlite_where=sa.text(NOT_SUCCEEDED),
        )


def downgrade() -> None:
    with op.batch_alter_table('job_records') as batch:
        batch.drop_index(INDEX)
        batch.create_index(INDEX, ['status', 'finished_at'])
