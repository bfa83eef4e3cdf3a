"""job history: tries, results, parents, retries and handled failures

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Reviewed by hand. job_records keeps one row per job, now with its result, its parent
submission, its worker, its next retry and whether a failure was handled; job_tries keeps
each try that ended in a retry. The single-column status and function indexes make way
for (status, finished_at) and (function, finished_at), which serve the history's lists
newest first; a partial index holds only the unhandled failures, which `dbjobs failed`
lists among every failure ever kept, and (parent_id, status, finished_at) finds a
submission's jobs in each state. Prefix indexes on profiles serve `dbjobs profiles
list` on any collation.
Batch mode keeps the SQLite path (the demo) working: SQLite cannot alter a constraint.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_STATES = "status IN ('retrying', 'succeeded', 'failed', 'cancelled')"
OLD_STATES = "status IN ('succeeded', 'failed')"
# As in domain/models/bookkeeping.py, copied: a migration must not change with the model.
UNHANDLED_FAILURE = "status = 'failed' AND handled_at IS NULL"
HAS_PARENT = "parent_id IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table('job_records') as batch:
        batch.add_column(sa.Column('parent_id', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('result', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('retryable', sa.Boolean(), nullable=True))
        batch.add_column(sa.Column('worker', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('next_retry_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True))
        batch.drop_constraint(op.f('ck_job_records_status'), type_='check')
        batch.create_check_constraint('status', NEW_STATES)
        batch.drop_index('ix_job_records_function')
        batch.drop_index('ix_job_records_status')
        batch.create_index(
            'ix_job_records_parent_status_finished_at',
            ['parent_id', 'status', 'finished_at'],
            postgresql_where=sa.text(HAS_PARENT),
            sqlite_where=sa.text(HAS_PARENT),
        )
        batch.create_index('ix_job_records_finished_at', ['finished_at'])
        batch.create_index('ix_job_records_status_finished_at', ['status', 'finished_at'])
        batch.create_index('ix_job_records_function_finished_at', ['function', 'finished_at'])
        batch.create_index(
            'ix_job_records_unhandled_failures',
            ['finished_at'],
            postgresql_where=sa.text(UNHANDLED_FAILURE),
            sqlite_where=sa.text(UNHANDLED_FAILURE),
        )
    op.create_table('job_tries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('job_id', sa.String(length=200), nullable=False),
    sa.Column('try_number', sa.Integer(), nullable=False),
    sa.Column('worker', sa.String(length=100), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('error_type', sa.String(length=200), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['job_records.job_id'], name=op.f('fk_job_tries_job_id_job_records'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_tries'))
    )
    op.create_index(op.f('ix_job_tries_job_id'), 'job_tries', ['job_id'], unique=False)
    op.create_index('ix_profiles_username_pattern', 'profiles', ['username'], unique=False, postgresql_ops={'username': 'text_pattern_ops'})
    op.create_index('ix_profiles_email_pattern', 'profiles', ['email'], unique=False, postgresql_ops={'email': 'text_pattern_ops'})


def downgrade() -> None:
    op.drop_index('ix_profiles_email_pattern', table_name='profiles')
    op.drop_index('ix_profiles_username_pattern', table_name='profiles')
    op.drop_index(op.f('ix_job_tries_job_id'), table_name='job_tries')
    op.drop_table('job_tries')
    # Rows in the new states have no place in the old schema's history.
    op.execute("DELETE FROM job_records WHERE status IN ('retrying', 'cancelled')")
    with op.batch_alter_table('job_records') as batch:
        batch.drop_index('ix_job_records_unhandled_failures')
        batch.drop_index('ix_job_records_function_finished_at')
        batch.drop_index('ix_job_records_status_finished_at')
        batch.drop_index('ix_job_records_finished_at')
        batch.drop_index('ix_job_records_parent_status_finished_at')
        batch.create_index('ix_job_records_status', ['status'])
        batch.create_index('ix_job_records_function', ['function'])
        batch.drop_constraint(op.f('ck_job_records_status'), type_='check')
        batch.create_check_constraint('status', OLD_STATES)
        batch.drop_column('handled_at')
        batch.drop_column('next_retry_at')
        batch.drop_column('worker')
        batch.drop_column('retryable')
        batch.drop_column('result')
        batch.drop_column('parent_id')
