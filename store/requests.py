"""Access requests: by id, listed, locked for a transition.

Store functions take a keyword-only ``session`` and never commit: the service owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from store.models import (
    AccessRequest,
    Grant,
)


def get_request(
    request_id: int, *, session: Session, for_update: bool = False, votes: bool = True
) -> AccessRequest | None:
    """A request with its grants (and its votes unless ``votes=False``: the revoke path never reads them).

    One query: the grants and votes are joined (a request has a few of each; separate loads cost a round trip
    each, most of a click's database time). ``for_update`` locks the request's row and then reads it afresh. On
    PostgreSQL that is two statements: one statement that waits for the lock and joins the votes joins them as
    they were when it started (READ COMMITTED), so it would miss the vote a concurrent click committed while it
    waited (seen: two ALL OF approvals at once, each counted alone, the request pending for good). SQLite's
    writers hold the database's write lock from ``BEGIN IMMEDIATE``: the read is already after the wait."""
    if for_update and session.get_bind().dialect.name == "postgresql":
        session.execute(select(AccessRequest.id).where(AccessRequest.id == request_id).with_for_update())
    stmt = select(AccessRequest).where(AccessRequest.id == request_id).options(joinedload(AccessRequest.grants))
    if votes:
        stmt = stmt.options(joinedload(AccessRequest.votes))
    if for_update:  # what this session read before the lock is stale: read over it
        stmt = stmt.execution_options(populate_existing=True)
    return session.scalars(stmt).unique().first()


def list_requests(
    *, session: Session, states: Sequence[str] | None = None, user_id: str | None = None, limit: int = 50
) -> list[AccessRequest]:
    stmt = select(AccessRequest).order_by(AccessRequest.id.desc()).limit(limit)
    if states:
        stmt = stmt.where(AccessRequest.state.in_(states))
    if user_id:
        granted = select(Grant.request_id).where(Grant.grantee_id == user_id)
        stmt = stmt.where(or_(AccessRequest.requester_id == user_id, AccessRequest.id.in_(granted)))
    return list(session.scalars(stmt.options(selectinload(AccessRequest.grants))))


def get_requests(request_ids: Sequence[int], *, session: Session, for_update: bool = False) -> list[AccessRequest]:
    """Requests by id with their grants (no votes), in id order."""
    stmt = select(AccessRequest).where(AccessRequest.id.in_(request_ids)).order_by(AccessRequest.id)
    if for_update:
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt.options(selectinload(AccessRequest.grants))))


def get_request_by_view(view_id: str, *, session: Session) -> AccessRequest | None:
    """The request submitted from this Slack view (``slack_view_id`` is unique)."""
    stmt = select(AccessRequest).where(AccessRequest.slack_view_id == view_id)
    return session.scalars(stmt.options(selectinload(AccessRequest.grants), selectinload(AccessRequest.votes))).first()


def flow_snapshots(request_ids: Sequence[int], *, session: Session) -> dict[int, dict[str, Any]]:
    """The flow snapshot of each request, by id (one query)."""
    if not request_ids:
        return {}
    rows = session.execute(
        select(AccessRequest.id, AccessRequest.flow_snapshot).where(AccessRequest.id.in_(list(request_ids)))
    )
    return {request_id: dict(snapshot or {}) for request_id, snapshot in rows}
