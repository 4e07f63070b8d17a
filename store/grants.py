"""Grants: by id, overlapping live grants of the same access, automatic-flow grants, counts by state.

Store functions take a keyword-only ``session`` and never commit: the service owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, exists, func, or_, select, update
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


# what a batch reads of each grant: enough to tell a connector what to revoke (``GrantSpec``) and to end it
GRANT_COLUMNS = (Grant.id, Grant.request_id, Grant.state, Grant.grantee_id, Grant.grantee_email, Grant.integration,
                 Grant.resource_key, Grant.resource, Grant.permission, Grant.permission_spec, Grant.expires_at,
                 Grant.external_ref, Grant.end_reason, Grant.attempts)


# what ending a grant needs of it
END_COLUMNS = (Grant.id, Grant.request_id, Grant.state, Grant.grantee_id, Grant.integration, Grant.end_reason)


def lock_grant_rows(grant_ids: Sequence[int], *, session: Session, columns: Sequence[Any] = GRANT_COLUMNS
                    ) -> list[Row[Any]]:
    """Grants by id as plain rows (``columns``: :data:`GRANT_COLUMNS` or :data:`END_COLUMNS`), locked, in id
    order: the batch paths read many grants without building ORM objects."""
    if not grant_ids:
        return []
    stmt = select(*columns).where(Grant.id.in_(list(grant_ids))).order_by(Grant.id).with_for_update()
    return list(session.execute(stmt))


def set_grants(grant_ids: Sequence[int], *, session: Session, **values: Any) -> None:
    """One ``UPDATE`` of these grants' columns."""
    if grant_ids:
        session.execute(update(Grant).where(Grant.id.in_(list(grant_ids))).values(**values)
                        .execution_options(synchronize_session=False))


def live_overlaps(grants: Sequence[Any], *, session: Session) -> dict[int, list[int]]:
    """Grant id -> ids of the other live grants (granting, active) of the same grantee, resource and permission,
    in one query for all of them."""
    if not grants:
        return {}
    stmt = select(Grant.id, Grant.grantee_id, Grant.resource_key, Grant.permission).where(
        Grant.grantee_id.in_({g.grantee_id for g in grants}),
        Grant.state.in_(("granting", "active")),
        Grant.resource_key.in_({g.resource_key for g in grants}),
    )
    by_access: dict[tuple[str, str, str], list[int]] = {}
    for row in session.execute(stmt):
        by_access.setdefault((row.grantee_id, row.resource_key, row.permission), []).append(row.id)
    return {g.id: [o for o in by_access.get((g.grantee_id, g.resource_key, g.permission), []) if o != g.id]
            for g in grants}


def requesters_of(request_ids: Sequence[int], *, session: Session) -> dict[int, str]:
    if not request_ids:
        return {}
    stmt = select(AccessRequest.id, AccessRequest.requester_id).where(AccessRequest.id.in_(list(request_ids)))
    return {row.id: row.requester_id for row in session.execute(stmt)}


def close_ended_requests(request_ids: Sequence[int], *, session: Session, now: datetime) -> None:
    """Requests none of whose grants is unfinished end (``bot.lifecycle.revoking.close_if_ended``, for many, in
    two statements): ``expired`` if their grants expired (or failed), else ``revoked`` if any was revoked."""
    if not request_ids:
        return
    unfinished = (*ACTIVE_GRANT_STATES, "awaiting_mfa")

    def having(*states: str) -> ColumnElement[bool]:
        return exists().where(Grant.request_id == AccessRequest.id, Grant.state.in_(states))

    ended = and_(AccessRequest.id.in_(list(request_ids)), ~having(*unfinished))
    for condition, state in (
        (and_(ended, having("expired"), ~having("revoked", "denied", "canceled")), "expired"),
        (and_(ended, having("revoked")), "revoked"),
    ):
        session.execute(update(AccessRequest).where(condition).values(state=state, updated_at=now)
                        .execution_options(synchronize_session=False))


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
