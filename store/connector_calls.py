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

from sqlalchemy import insert, literal, select, update
from sqlalchemy.orm import Session

from store.id_sets import among, rows_of
from store.models import ConnectorCall, table


@dataclass(frozen=True, slots=True)
class CallKey:
    grant_id: int
    action: str  # grant | extend | revoke
    key: str  # the idempotency key the connector sends


def start_calls(*, session: Session, calls: Sequence[CallKey], now: datetime) -> dict[str, bool]:
    """Record that these calls start (one lookup, one insert, one update, whatever their number: each set of keys
    and rows bound as one parameter); returns
    key -> already done (then the call is not made again)."""
    if not calls:
        return {}
    keys = [c.key for c in calls]
    done = {
        key: finished is not None
        for key, finished in session.execute(
            select(ConnectorCall.idempotency_key, ConnectorCall.done_at)
            .where(among(ConnectorCall.idempotency_key, keys, session=session))
        )
    }
    again = [key for key, finished in done.items() if not finished]
    if again:
        session.execute(
            update(ConnectorCall)
            .where(among(ConnectorCall.idempotency_key, again, session=session))
            .values(attempts=ConnectorCall.attempts + 1, started_at=now)
            .execution_options(synchronize_session=False)
        )
    new = list({c.key: c for c in calls if c.key not in done}.values())
    if new:
        ledger = table(ConnectorCall)
        started = rows_of(grant_id=(ledger.c.grant_id.type, [c.grant_id for c in new]),
                          action=(ledger.c.action.type, [c.action for c in new]),
                          key=(ledger.c.idempotency_key.type, [c.key for c in new]), session=session)
        session.execute(insert(ledger).from_select(
            ["grant_id", "action", "idempotency_key", "started_at", "attempts"],
            select(started.c.grant_id, started.c.action, started.c.key, literal(now, ledger.c.started_at.type),
                   literal(1, ledger.c.attempts.type)),
        ))
    return {key: done.get(key, False) for key in keys}


def finish_calls(*, session: Session, keys: Sequence[str], now: datetime) -> None:
    """The calls are done: written in the transaction that records what they did."""
    if keys:
        session.execute(
            update(ConnectorCall)
            .where(among(ConnectorCall.idempotency_key, keys, session=session), ConnectorCall.done_at.is_(None))
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
