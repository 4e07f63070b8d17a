"""Read models for a person: their App Home, and whether they may see a request's details (SPEC §6).

Display only — every click is re-authorized by the service when it acts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from bot.lifecycle.approvers import approver_groups
from bot.lifecycle.directory import IdentityProvider
from bot.lifecycle.records import HomeData, RequestRecord
from policy.identity import Identity
from policy.states import UNFINISHED, RequestState

Lister = Callable[..., list[RequestRecord]]


def may_approve(directory: IdentityProvider, record: RequestRecord, me: Identity, now: datetime) -> bool:
    """Whether ``me`` counts for one of the request's approver groups (or reached tiers) now."""
    flow = record.flow()
    if flow is None:
        return False
    requester = directory.identity(record.requester_id, now)
    grantees = [directory.identity(g, now) for g in record.grantee_ids]
    return bool(approver_groups(flow, me, requester, grantees, {record.integration}, tiers=record.escalation_tier))


def may_view(directory: IdentityProvider, record: RequestRecord, me: Identity, now: datetime, *,
             admin: bool) -> bool:
    """The requester, a grantee, someone who decided or may decide, or an admin may see the request's details."""
    parties = {record.requester_id, *record.grantee_ids, *(v.approver_id for v in record.votes)}
    if me.key in parties or admin:
        return True
    return may_approve(directory, record, me, now)


def home_data(list_requests: Lister, directory: IdentityProvider, user_id: str, now: datetime) -> HomeData:
    """A user's live and pending requests, what waits for their approval (judged by each request's flow
    snapshot), and recent history."""
    mine: Sequence[RequestRecord] = list_requests(user_id=user_id, limit=50)
    # held, being granted, waiting for a grantee's MFA, being revoked or failing to revoke: all still need eyes
    active = [
        r for r in mine
        if any(g.state in UNFINISHED and user_id in (g.grantee_id, r.requester_id) for g in r.grants)
    ]
    pending = [r for r in mine if r.state == RequestState.PENDING and r.requester_id == user_id]
    history = [r for r in mine if r.state != RequestState.PENDING and r not in active][:10]
    me = directory.identity(user_id, now)
    to_approve = [
        record for record in list_requests(states=[RequestState.PENDING], limit=50)
        if record.requester_id != user_id and may_approve(directory, record, me, now)
    ]
    return HomeData(user_id, active, pending, to_approve, history)
