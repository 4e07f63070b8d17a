"""SQLAlchemy 2 typed models: requests, grants, votes, extensions, audit events, due work, outbox, MFA,
and the installation's own identity."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


def table(model: type[Base]) -> Table:
    """A model's Core table: bulk inserts through it skip the ORM's per-row bookkeeping."""
    return Base.metadata.tables[model.__tablename__]


def conflict_insert(session: Session, model: type[Base]) -> postgresql.Insert | sqlite.Insert:
    """``INSERT INTO`` the model's table in the session's database's dialect, so that it can take
    ``.on_conflict_do_nothing()`` (PostgreSQL and SQLite spell it alike)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model)


class AccessRequest(Base):
    __tablename__ = "access_requests"
    __table_args__ = (UniqueConstraint("slack_view_id", name="uq_access_requests_slack_view_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    flow_name: Mapped[str] = mapped_column(String(80))
    flow_snapshot: Mapped[dict[str, Any]]
    requester_id: Mapped[str] = mapped_column(String(64), index=True)
    requester_email: Mapped[str | None] = mapped_column(String(254))
    grantee_ids: Mapped[list[Any]]
    integration: Mapped[str] = mapped_column(String(80))
    permission: Mapped[str] = mapped_column(String(80))
    resource_keys: Mapped[list[Any]]
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    justification: Mapped[str] = mapped_column(Text, default="")
    escalation_tier: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    pending_until: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    # the modal it was submitted from: one request per view, however often Slack delivers it (migration 0003)
    slack_view_id: Mapped[str | None] = mapped_column(String(64))
    # settings.break_glass: granted at once, reviewed by the approvers afterwards (acknowledged / revoked)
    break_glass: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    reviewed_at: Mapped[datetime | None]
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    review_outcome: Mapped[str | None] = mapped_column(String(20))

    grants: Mapped[list[Grant]] = relationship(back_populates="request", order_by="Grant.id")
    votes: Mapped[list[ApprovalVote]] = relationship(back_populates="request", order_by="ApprovalVote.id")


class Grant(Base):
    """One grantee × resource × permission of a request, with its own state."""

    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_grantee_state", "grantee_id", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"), index=True)
    grantee_id: Mapped[str] = mapped_column(String(64))
    grantee_email: Mapped[str | None] = mapped_column(String(254))
    integration: Mapped[str] = mapped_column(String(80))
    resource_key: Mapped[str] = mapped_column(String(400))
    resource: Mapped[dict[str, Any]]
    permission: Mapped[str] = mapped_column(String(80))
    permission_spec: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(20), index=True)
    created_at: Mapped[datetime]
    granted_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(200))
    extensions_used: Mapped[int] = mapped_column(Integer, default=0)
    external_ref: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)

    request: Mapped[AccessRequest] = relationship(back_populates="grants")


class ApprovalVote(Base):
    __tablename__ = "approval_votes"
    __table_args__ = (UniqueConstraint("request_id", "approver_id", name="uq_vote_per_approver"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"), index=True)
    approver_id: Mapped[str] = mapped_column(String(64))
    approver_email: Mapped[str | None] = mapped_column(String(254))
    decision: Mapped[str] = mapped_column(String(10))
    groups: Mapped[list[Any]]
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

    request: Mapped[AccessRequest] = relationship(back_populates="votes")


class Extension(Base):
    __tablename__ = "extensions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id"), index=True)
    actor_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    previous_expiry: Mapped[datetime | None]
    new_expiry: Mapped[datetime | None]


class AuditEvent(Base):
    """Append-only: rows are inserted, never updated or deleted (triggers refuse both; migration 0002)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    event: Mapped[str] = mapped_column(String(40), index=True)
    actor: Mapped[str] = mapped_column(String(254))
    request_id: Mapped[int | None] = mapped_column(Integer, index=True)
    grant_id: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]]


class DueWork(Base):
    """A deadline written in the same transaction as the state it belongs to; claimed with a lease."""

    __tablename__ = "due_work"
    __table_args__ = (Index("ix_due_work_pending", "done_at", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    request_id: Mapped[int | None] = mapped_column(Integer, index=True)
    grant_id: Mapped[int | None] = mapped_column(Integer, index=True)
    due_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]]
    lease_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(40), index=True)  # the claim holding the lease
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    done_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class ConnectorCall(Base):
    """The ledger of connector calls: written "started" before a call, "done" in the transaction that records
    what it did, so after a crash only the calls that cannot be proven finished are repeated (with their key)."""

    __tablename__ = "connector_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(20))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    started_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class OutboxMessage(Base):
    """A notification to deliver to Slack; sent (at most once per row) by the outbox worker."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "sent_at", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[int | None] = mapped_column(Integer, index=True)
    grant_id: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]]
    secret: Mapped[str | None] = mapped_column(Text)  # encrypted credentials for the grantee's DM only
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class SlackMessageRef(Base):
    """Where a message about a request was posted, so it can be updated in place."""

    __tablename__ = "slack_messages"
    __table_args__ = (UniqueConstraint("request_id", "user_id", "purpose", name="uq_message_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(Integer, index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(64))
    ts: Mapped[str] = mapped_column(String(32))


class MfaEnrolment(Base):
    __tablename__ = "mfa_enrolments"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]


class ProcessedEvent(Base):
    """Slack event ids already handled (Slack retries events)."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)


class Installation(Base):
    """The one row that says who this installation is: an id generated once (connectors put it in the names
    and labels of what they create, so two installations on one target never touch each other's), and a check
    value encrypted with the key that encrypts this database's secrets (start refuses any other key)."""

    __tablename__ = "installation"
    __table_args__ = (CheckConstraint("singleton = 1", name="ck_installation_singleton"),)

    singleton: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    installation_id: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[datetime]
    key_check: Mapped[str | None] = mapped_column(Text)


class DirectorySnapshot(Base):
    """The last full copy of a directory source (Slack's users and user groups), so that a start — or another
    replica — serves at once from it while the source is read again in the background. A 10,000-person
    workspace is 50 ``users.list`` pages: half a minute at Slack's latency, minutes within its rate limits."""

    __tablename__ = "directory_snapshots"

    source: Mapped[str] = mapped_column(String(40), primary_key=True)
    taken_at: Mapped[datetime]
    users: Mapped[list[Any]]
    groups: Mapped[list[Any] | None]
