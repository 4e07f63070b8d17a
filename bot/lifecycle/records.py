"""Plain, frozen views of stored requests and grants: what handlers, views and the CLI read (no ORM leaks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from policy.config import Flow
from policy.durations import parse_duration
from store.models import AccessRequest, Grant


@dataclass(frozen=True, slots=True)
class VoteRecord:
    approver_id: str
    decision: str
    reason: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class GrantRecord:
    id: int
    request_id: int
    grantee_id: str
    grantee_email: str | None
    integration: str
    resource_key: str
    resource_name: str
    resource_type: str
    permission: str
    state: str
    granted_at: datetime | None
    expires_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    extensions_used: int
    attempts: int
    last_error: str | None

    @classmethod
    def of(cls, grant: Grant) -> GrantRecord:
        return cls(
            id=grant.id,
            request_id=grant.request_id,
            grantee_id=grant.grantee_id,
            grantee_email=grant.grantee_email,
            integration=grant.integration,
            resource_key=grant.resource_key,
            resource_name=str(grant.resource.get("name", grant.resource_key)),
            resource_type=str(grant.resource.get("type", "")),
            permission=grant.permission,
            state=grant.state,
            granted_at=grant.granted_at,
            expires_at=grant.expires_at,
            ended_at=grant.ended_at,
            end_reason=grant.end_reason,
            extensions_used=grant.extensions_used,
            attempts=grant.attempts,
            last_error=grant.last_error,
        )


@dataclass(frozen=True, slots=True)
class RequestRecord:
    id: int
    state: str
    flow_name: str
    requester_id: str
    requester_email: str | None
    grantee_ids: tuple[str, ...]
    integration: str
    permission: str
    resource_keys: tuple[str, ...]
    duration: timedelta | None
    justification: str
    escalation_tier: int
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None
    pending_until: datetime | None
    risk: str | None  # None: no risk level was configured for what it asks (nothing is shown)
    require_approver_reason: bool
    extend_max_times: int
    extend_each: timedelta
    grants: tuple[GrantRecord, ...]
    votes: tuple[VoteRecord, ...]
    flow_snapshot: Mapping[str, Any] = field(default_factory=dict)  # the flow as it was when requested
    break_glass: bool = False  # granted at once; the approvers review it afterwards
    reviewed_at: datetime | None = None
    reviewed_by: str | None = None
    review_outcome: str | None = None  # acknowledged | revoked

    @property
    def flow_type(self) -> str:
        return str(self.flow_snapshot.get("flow", {}).get("type", "self_serve"))

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.flow_snapshot.get("flow", {}).get("labels") or ())

    @property
    def approval_channel(self) -> str | None:
        """The team channel the request is posted to for approval (``approval.channel``), if any."""
        return approval_channel(self.flow_snapshot)

    @property
    def awaiting_review(self) -> bool:
        return self.break_glass and self.reviewed_at is None

    def flow(self) -> Flow | None:
        """The flow the request was made under (its snapshot: a later config change never alters it)."""
        raw = self.flow_snapshot.get("flow")
        return Flow.model_validate(raw) if raw else None

    @property
    def resource_names(self) -> list[str]:
        return [key.split("/", 2)[-1] for key in self.resource_keys]

    @property
    def expires_at(self) -> datetime | None:
        times = [g.expires_at for g in self.grants if g.expires_at is not None]
        return max(times) if times else None

    @classmethod
    def of(cls, row: AccessRequest) -> RequestRecord:
        snapshot = row.flow_snapshot or {}
        flow = snapshot.get("flow", {})
        extend = flow.get("extend", {})
        return cls(
            id=row.id,
            state=row.state,
            flow_name=row.flow_name,
            requester_id=row.requester_id,
            requester_email=row.requester_email,
            grantee_ids=tuple(row.grantee_ids),
            integration=row.integration,
            permission=row.permission,
            resource_keys=tuple(row.resource_keys),
            duration=None if row.duration_seconds is None else timedelta(seconds=row.duration_seconds),
            justification=row.justification,
            escalation_tier=row.escalation_tier,
            created_at=row.created_at,
            decided_at=row.decided_at,
            decided_by=row.decided_by,
            decision_reason=row.decision_reason,
            pending_until=row.pending_until,
            risk=None if snapshot.get("risk") is None else str(snapshot["risk"]),
            require_approver_reason=bool(flow.get("settings", {}).get("require_approver_reason", False)),
            extend_max_times=int(extend.get("max_times", 0)),
            extend_each=parse_duration(extend.get("each", "30m")),
            grants=tuple(GrantRecord.of(g) for g in row.grants),
            votes=tuple(VoteRecord(v.approver_id, v.decision, v.reason, v.created_at) for v in row.votes),
            flow_snapshot=snapshot,
            break_glass=bool(row.break_glass),
            reviewed_at=row.reviewed_at,
            reviewed_by=row.reviewed_by,
            review_outcome=row.review_outcome,
        )


def approval_channel(snapshot: Mapping[str, Any]) -> str | None:
    """The channel a request's flow snapshot posts approvals to (``approval.channel``), or None."""
    approval = (snapshot.get("flow") or {}).get("approval") or {}
    channel = approval.get("channel")
    return str(channel) if channel else None


def flow_of(row: AccessRequest) -> Flow:
    """The flow a stored request was made under (its snapshot: a later config change never alters it)."""
    return Flow.model_validate(row.flow_snapshot["flow"])


@dataclass(frozen=True, slots=True)
class Notice:
    """An outbox notification as it is rendered: its kind and the request as it is now."""

    kind: str
    recipient: str | None
    request: RequestRecord | None
    grant_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, Any] | None = None

    @property
    def grant(self) -> GrantRecord | None:
        if self.request is None or self.grant_id is None:
            return None
        return next((g for g in self.request.grants if g.id == self.grant_id), None)


@dataclass(frozen=True, slots=True)
class HomeData:
    """What a user's App Home shows (display only: every click re-authorizes)."""

    user_id: str
    active: Sequence[RequestRecord] = ()
    pending: Sequence[RequestRecord] = ()
    to_approve: Sequence[RequestRecord] = ()
    history: Sequence[RequestRecord] = ()
