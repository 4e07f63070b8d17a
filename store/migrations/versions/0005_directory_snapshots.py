"""the last full copy of the Slack directory (directory_snapshots): a start serves from it at once

Revision ID: 0005_directory_snapshots
Revises: 0004_leases_calls
Create Date: 2026-12-04 19:15:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005_directory_snapshots'
down_revision: str | Sequence[str] | None = '0004_leases_calls'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'directory_snapshots',
        sa.Column('source', sa.String(length=40), nullable=False),
        sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('users', sa.JSON(), nullable=False),
        sa.Column('groups', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('source'),
    )


def downgrade() -> None:
    op.drop_table('directory_snapshots')
