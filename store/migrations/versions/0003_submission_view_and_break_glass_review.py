"""one request per submitted Slack view; break-glass reviews

Revision ID: 0003_view_and_review
Revises: 0002_atrest
Create Date: 2026-12-08 12:00:00

``access_requests.slack_view_id`` holds the id of the modal a request was submitted from, unique: Slack may
deliver the same signed ``view_submission`` several times, and only the first makes a request. Requests made
without a modal (the CLI, automatic flows) leave it NULL (NULLs never collide, on SQLite and PostgreSQL).

``break_glass`` marks a request granted at once under ``settings.break_glass``; ``reviewed_at``,
``reviewed_by`` and ``review_outcome`` (``acknowledged`` or ``revoked``) record the approvers' review after
the fact. An unreviewed break-glass request escalates like a pending one.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003_view_and_review'
down_revision: str | Sequence[str] | None = '0002_atrest'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('access_requests') as table:
        table.add_column(sa.Column('slack_view_id', sa.String(length=64), nullable=True))
        table.add_column(sa.Column('break_glass', sa.Boolean(), nullable=False, server_default=sa.false()))
        table.add_column(sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column('reviewed_by', sa.String(length=64), nullable=True))
        table.add_column(sa.Column('review_outcome', sa.String(length=20), nullable=True))
        table.create_unique_constraint('uq_access_requests_slack_view_id', ['slack_view_id'])


def downgrade() -> None:
    with op.batch_alter_table('access_requests') as table:
        table.drop_constraint('uq_access_requests_slack_view_id', type_='unique')
        for column in ('review_outcome', 'reviewed_by', 'reviewed_at', 'break_glass', 'slack_view_id'):
            table.drop_column(column)
