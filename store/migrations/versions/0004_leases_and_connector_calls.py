"""leases follow the work (due_work.lease_owner); the connector call ledger (connector_calls)

Revision ID: 0004_leases_calls
Revises: 0003_view_and_review
Create Date: 2026-12-01 23:50:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004_leases_calls'
down_revision: str | Sequence[str] | None = '0003_view_and_review'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('due_work', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=40), nullable=True))
        batch_op.create_index('ix_due_work_lease_owner', ['lease_owner'], unique=False)
    op.create_table(
        'connector_calls',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('grant_id', sa.Integer(), nullable=False),
        sa.Column('action', sa.String(length=20), nullable=False),
        sa.Column('idempotency_key', sa.String(length=200), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('idempotency_key'),
    )
    with op.batch_alter_table('connector_calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_connector_calls_grant_id'), ['grant_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('connector_calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_connector_calls_grant_id'))
    op.drop_table('connector_calls')
    with op.batch_alter_table('due_work', schema=None) as batch_op:
        batch_op.drop_index('ix_due_work_lease_owner')
        batch_op.drop_column('lease_owner')
