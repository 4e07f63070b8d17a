"""Counts for ``/metrics`` read at scrape time: requests by flow and state (every replica reports the same)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import AccessRequest


def request_counts(session: Session) -> dict[tuple[str, str], int]:
    """``{(flow name, state): count}`` over every request ever made (one grouped scan)."""
    rows = session.execute(
        select(AccessRequest.flow_name, AccessRequest.state, func.count()).group_by(
            AccessRequest.flow_name, AccessRequest.state)
    )
    return {(flow, state): int(count) for flow, state, count in rows}
