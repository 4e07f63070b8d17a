"""Grants: by id, overlapping live grants of the same access, automatic-flow grants, counts by state.

Store functions take a keyword-only ``session`` and never commit: the service owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session, contains_eager

from store.models import (
    AccessRequest,
    Grant,
)

ACTIVE_GRANT_STATES = ("granting", "active", "revoking", "revoke_failed")


def get_grant(grant_id: int, *, session: Session, for_update: bool = False) -> Grant | None:
    """A grant; ``for_update`` locks it and reads it afresh (an older copy in the session is refreshed)."""
    stmt = select(Grant).where(Grant.id == grant_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalars(stmt).first()


def get_grants(grant_ids: Sequence[int], *, session: Session, for_update: bool = False) -> list[Grant]:
    """Grants by id, in id order (a stable lock order: concurrent batches never deadlock)."""
    stmt = select(Grant).where(Grant.id.in_(grant_ids)).order_by(Grant.id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return list(session.scalars(stmt))


def overlapping_grants_of(grants: Sequence[Grant], *, session: Session) -> dict[int, list[Grant]]:
    """:func:`overlapping_grants` for many grants in one query: grant id -> the other live grants like it."""
    if not grants:
        return {}
    stmt = select(Grant).where(
        Grant.grantee_id.in_({g.grantee_id for g in grants}),
        Grant.state.in_(("granting", "active")),
        Grant.resource_key.in_({g.resource_key for g in grants}),
    )
    live = list(session.scalars(stmt))
    return {
        g.id: [
            o
            for o in live
            if (o.grantee_id, o.resource_key, o.permission) == (g.grantee_id, g.resource_key, g.permission)
            and o.id != g.id
        ]
        for g in grants
    }


def overlapping_grants(grant: Grant, *, session: Session) -> list[Grant]:
    """Other live grants giving the same grantee the same permission on the same resource."""
    stmt = select(Grant).where(
        Grant.grantee_id == grant.grantee_id,
        Grant.state.in_(("granting", "active")),
        Grant.resource_key == grant.resource_key,
        Grant.permission == grant.permission,
        Grant.id != grant.id,
    )
    return list(session.scalars(stmt))


def automatic_grants(
    *, session: Session, grantee_id: str | None = None, failed_since: datetime | None = None
) -> list[Grant]:
    """Grants held or being revoked (``ACTIVE_GRANT_STATES``) of requests made under an automatic flow.

    An automatic flow's request is recognised by its flow snapshot (``type: automatic``), so its grants are
    found even after the flow was removed from the configuration. With ``failed_since``, grants that failed
    since then are included too. Each grant's request is loaded with it.
    """
    held: ColumnElement[bool] = Grant.state.in_(ACTIVE_GRANT_STATES)
    if failed_since is not None:
        held = or_(held, and_(Grant.state == "failed", Grant.ended_at >= failed_since))
    stmt = (
        select(Grant)
        .join(AccessRequest, Grant.request_id == AccessRequest.id)
        .where(held, AccessRequest.flow_snapshot[("flow", "type")].as_string() == "automatic")
        .options(contains_eager(Grant.request))
        .order_by(Grant.id)
    )
    if grantee_id is not None:
        stmt = stmt.where(Grant.grantee_id == grantee_id)
    return list(session.scalars(stmt))


def live_grant_counts(*, session: Session) -> dict[str, int]:
    """How many grants are in each state that still needs the bot (granting … revoke_failed)."""
    states = (*ACTIVE_GRANT_STATES, "awaiting_mfa")
    rows = session.execute(select(Grant.state, func.count()).where(Grant.state.in_(states)).group_by(Grant.state))
    return {state: 0 for state in states} | {str(state): int(n) for state, n in rows}
