"""Grants: by id, overlapping live grants of the same access, automatic-flow grants, counts by state.

Store functions take a keyword-only ``session`` and never commit: the service owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Text, and_, case, cast, func, literal, or_, select, update
from sqlalchemy.orm import Session, contains_eager

from policy.states import ENDING, UNFINISHED
from store.id_sets import among
from store.models import (
    AccessRequest,
    Grant,
    table,
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


_GRANTS = table(Grant)

# what a batch reads of each grant: enough to tell a connector what to revoke (``GrantSpec``) and to end it; the
# JSON columns as their text, so the caller parses each distinct resource and permission once, not once per grant
GRANT_COLUMNS = (
    *(_GRANTS.c[name] for name in ("id", "request_id", "state", "grantee_id", "grantee_email", "integration",
                                   "resource_key", "permission", "expires_at", "external_ref", "end_reason",
                                   "attempts")),
    cast(_GRANTS.c.resource, Text).label("resource_json"),
    cast(_GRANTS.c.permission_spec, Text).label("permission_spec_json"),
)


def lock_grant_rows(grant_ids: Sequence[int], *, session: Session) -> list[Row[Any]]:
    """Grants by id as plain rows of :data:`GRANT_COLUMNS`, locked, in id order: the batch paths read many grants
    without building ORM objects."""
    if not grant_ids:
        return []
    stmt = (select(*GRANT_COLUMNS).where(among(_GRANTS.c.id, grant_ids, session=session)).order_by(_GRANTS.c.id)
            .with_for_update())
    return list(session.execute(stmt))


def set_grants(grant_ids: Sequence[int], *, session: Session, **values: Any) -> None:
    """One ``UPDATE`` of these grants' columns."""
    if grant_ids:
        session.execute(update(_GRANTS).where(among(_GRANTS.c.id, grant_ids, session=session)).values(**values))


def end_grants(grant_ids: Sequence[int], *, session: Session, now: datetime) -> list[Row[Any]]:
    """Those of these grants still being revoked (``revoking``, ``revoke_failed``) end, in one ``UPDATE …
    RETURNING``: ``expired`` when their end reason is ``expired``, else ``revoked``. Returns their rows as ended
    (id, request id, grantee, integration, end reason, state), in id order."""
    if not grant_ids:
        return []
    mine = among(_GRANTS.c.id, grant_ids, session=session)
    final = case((_GRANTS.c.end_reason == "expired", literal("expired")), else_=literal("revoked"))
    stmt = (update(_GRANTS).where(mine, _GRANTS.c.state.in_(sorted(ENDING))).values(state=final, ended_at=now)
            .returning(_GRANTS.c.id, _GRANTS.c.request_id, _GRANTS.c.grantee_id, _GRANTS.c.integration,
                       _GRANTS.c.end_reason, _GRANTS.c.state))
    return sorted(session.execute(stmt), key=lambda row: row.id)


def live_overlaps(grants: Sequence[Any], *, session: Session) -> dict[int, list[int]]:
    """Grant id -> ids of the other live grants (granting, active) of the same grantee, resource and permission,
    in one query for all of them."""
    if not grants:
        return {}
    g = _GRANTS.c
    stmt = select(g.id, g.grantee_id, g.resource_key, g.permission).where(
        g.grantee_id.in_({row.grantee_id for row in grants}),
        g.state.in_(("granting", "active")),
        g.resource_key.in_({row.resource_key for row in grants}),
    )
    by_access: dict[tuple[str, str, str], list[int]] = {}
    for row in session.execute(stmt):
        by_access.setdefault((row.grantee_id, row.resource_key, row.permission), []).append(row.id)
    return {row.id: [o for o in by_access.get((row.grantee_id, row.resource_key, row.permission), []) if o != row.id]
            for row in grants}


def close_ended_requests(request_ids: Sequence[int], *, session: Session, now: datetime) -> None:
    """Requests none of whose grants is unfinished end, as ``bot.lifecycle.revoking.close_if_ended`` ends one:
    ``expired`` if their grants expired (or failed), else ``revoked`` if any was revoked.

    The requests are locked first (in id order), so two transactions ending the last grants of one request
    (two batches) cannot both see the other's grant unfinished; then one read of their grants' states (by the
    request index: the cost follows these requests, not the table) and an ``UPDATE`` per outcome.
    """
    if not request_ids:
        return
    requests = table(AccessRequest)
    ids = sorted(set(request_ids))
    session.execute(select(requests.c.id).where(among(requests.c.id, ids, session=session)).order_by(requests.c.id)
                    .with_for_update())
    states: dict[int, set[str]] = {}
    for request_id, state in session.execute(
        select(_GRANTS.c.request_id, _GRANTS.c.state).where(among(_GRANTS.c.request_id, ids, session=session))
    ):
        states.setdefault(request_id, set()).add(state)
    ended: dict[str, list[int]] = {"expired": [], "revoked": []}
    for request_id, held in states.items():
        if held & UNFINISHED:
            continue
        if held <= {"expired", "failed"} and "expired" in held:
            ended["expired"].append(request_id)
        elif "revoked" in held:
            ended["revoked"].append(request_id)
    for state, closing in ended.items():
        if closing:
            session.execute(update(requests).where(among(requests.c.id, closing, session=session))
                            .values(state=state, updated_at=now))


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
