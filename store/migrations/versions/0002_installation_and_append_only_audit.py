"""the installation row (id, key check) and an append-only audit table

Revision ID: 0002_atrest
Revises: 0001
Create Date: 2026-12-01 12:00:00

The ``installation`` table holds one row: the id this installation puts in the names and labels of what its
connectors create, and a check value encrypted with the database's encryption key. The audit table becomes
append-only: triggers refuse UPDATE and DELETE (and, on PostgreSQL, TRUNCATE) on ``audit_events``.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002_atrest'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSAL = "audit_events is append-only: rows are never updated or deleted"

POSTGRES_UP = [
    f"""
    CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    "CREATE TRIGGER audit_events_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_events"
    " FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
    "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events"
    " FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()",
]
POSTGRES_DOWN = [
    "DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events",
    "DROP TRIGGER IF EXISTS audit_events_no_update_or_delete ON audit_events",
    "DROP FUNCTION IF EXISTS audit_events_append_only()",
]
SQLITE_UP = [
    f"CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events"
    f" BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END",
    f"CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events"
    f" BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS audit_events_no_update",
    "DROP TRIGGER IF EXISTS audit_events_no_delete",
]


def upgrade() -> None:
    op.create_table(
        'installation',
        sa.Column('singleton', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('installation_id', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('key_check', sa.Text(), nullable=True),
        sa.CheckConstraint('singleton = 1', name='ck_installation_singleton'),
        sa.PrimaryKeyConstraint('singleton'),
        sa.UniqueConstraint('installation_id'),
    )
    for statement in POSTGRES_UP if op.get_bind().dialect.name == "postgresql" else SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    for statement in POSTGRES_DOWN if op.get_bind().dialect.name == "postgresql" else SQLITE_DOWN:
        op.execute(statement)
    op.drop_table('installation')
