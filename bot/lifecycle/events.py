"""Audit events and notifications, written in the caller's transaction.

Every transition writes an append-only audit event; when ``audit_channel`` is configured the event is also
queued for the channel, and the events of :data:`THREAD_EVENTS` go to the thread under the request's message
in its flow's approval channel. Notifications are queued in the durable outbox as *what happened* (kind, recipient,
request) — the Slack layer renders them from the request's state when it sends them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.lifecycle.records import approval_channel
from store import audit as audit_log
from store import outbox as outbox_store
from store.models import AccessRequest, Grant

THREAD_EVENTS = frozenset({
    "escalated", "granted", "revoked", "expired", "grant_failed", "revoke_failed",
    "break_glass_acknowledged", "break_glass_revoked",
})
"""Events told in the thread under a request's channel approval message (``approval.channel``)."""


class Events:
    def __init__(self, audit_channel: Callable[[], str | None] | None = None) -> None:
        self._audit_channel = audit_channel or (lambda: None)

    def audit_channel(self) -> str | None:
        """Where audit events are mirrored (``audit_channel`` of the config in force), if anywhere."""
        return self._audit_channel()

    def record(
        self,
        session: Session,
        now: datetime,
        event: str,
        actor: str,
        request: AccessRequest | None = None,
        *,
        grant: Grant | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        request_id = request.id if request is not None else (grant.request_id if grant is not None else None)
        grant_id = grant.id if grant is not None else None
        audit_log.add_audit(at=now, event=event, actor=actor, request_id=request_id, grant_id=grant_id,
            details=details, session=session
        )
        in_channel = approval_channel(request.flow_snapshot or {}) if request is not None else None
        if in_channel and event in THREAD_EVENTS:
            outbox_store.enqueue(now=now, kind="channel_thread", recipient=in_channel, request_id=request_id,
                                 grant_id=grant_id, payload={"event": event, "actor": actor, "details": details or {}},
                                 session=session)
        channel = self._audit_channel()
        if channel:
            outbox_store.enqueue(now=now,
                kind="audit_post",
                recipient=channel,
                request_id=request_id,
                grant_id=grant_id,
                payload={"event": event, "actor": actor, "details": details or {}}, session=session
            )

    def notify_all(self, session: Session, now: datetime, kind: str, recipients: Sequence[str],
                   request: AccessRequest) -> None:
        """:meth:`notify` for each of ``recipients`` about ``request`` (no payload), in one statement."""
        outbox_store.enqueue_many(session=session, now=now, kind=kind, recipients=recipients, request_id=request.id)

    def notify(
        self,
        session: Session,
        now: datetime,
        kind: str,
        recipient: str | None,
        request: AccessRequest | None = None,
        *,
        grant: Grant | None = None,
        payload: dict[str, Any] | None = None,
        secret: str | None = None,
    ) -> None:
        request_id = request.id if request is not None else (grant.request_id if grant is not None else None)
        outbox_store.enqueue(now=now,
            kind=kind,
            recipient=recipient,
            request_id=request_id,
            grant_id=grant.id if grant is not None else None,
            payload=payload,
            secret=secret, session=session
        )
