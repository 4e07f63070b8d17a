"""The connector call ledger: "started" before a connector call, "done" in the transaction that records its
outcome (SPEC §8: exactly once where the receiver cannot dedupe).

A call is named by its idempotency key (``integrations.base.idempotency_key``), which the connector sends
along; after a crash the bot repeats a call only when the ledger shows it started and not done — and then
with the same key, so a receiver that dedupes sees one effective call, and one that cannot sees a repeat only
for the calls in flight at the crash. Store functions take a keyword-only ``session`` and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.models import ConnectorCall


@dataclass(frozen=True, slots=True)
class CallKey:
    grant_id: int
    action: str  # grant | extend | revoke
    key: str  # the idempotency key the connector sends


def calls_by_key(*, session: Session, keys: Sequence[str]) -> dict[str, ConnectorCall]:
    if not keys:
        return {}
    rows = session.scalars(select(ConnectorCall).where(ConnectorCall.idempotency_key.in_(list(keys))))
    return {row.idempotency_key: row for row in rows}


def start_calls(*, session: Session, calls: Sequence[CallKey], now: datetime) -> dict[str, bool]:
    """Record that these calls start (one lookup, one insert); returns key -> already done (skip the call)."""
    existing = calls_by_key(session=session, keys=[c.key for c in calls])
    done: dict[str, bool] = {}
    for call in calls:
        row = existing.get(call.key)
        if row is None:
            row = ConnectorCall(grant_id=call.grant_id, action=call.action, idempotency_key=call.key,
                                started_at=now, attempts=0)
            session.add(row)
            existing[call.key] = row
        done[call.key] = row.done_at is not None
        if row.done_at is None:
            row.attempts += 1
            row.started_at = now
    return done


def finish_calls(*, session: Session, keys: Sequence[str], now: datetime) -> None:
    """The calls are done: written in the transaction that records what they did."""
    if keys:
        session.execute(
            update(ConnectorCall)
            .where(ConnectorCall.idempotency_key.in_(list(keys)), ConnectorCall.done_at.is_(None))
            .values(done_at=now)
            .execution_options(synchronize_session=False)
        )


def fail_call(*, session: Session, key: str, error: str) -> None:
    session.execute(
        update(ConnectorCall)
        .where(ConnectorCall.idempotency_key == key)
        .values(last_error=error[:2000])
        .execution_options(synchronize_session=False)
    )


def started_calls(*, session: Session, grant_ids: Sequence[int], action: str) -> dict[int, ConnectorCall]:
    """The latest ``action`` call of each grant (done or not): grant id -> call."""
    if not grant_ids:
        return {}
    rows = session.scalars(
        select(ConnectorCall)
        .where(ConnectorCall.grant_id.in_(list(grant_ids)), ConnectorCall.action == action)
        .order_by(ConnectorCall.id)
    )
    return {row.grant_id: row for row in rows}
