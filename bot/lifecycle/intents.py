"""What an approved request grants, written as grant intents (SPEC §5: one grant per grantee × resource).

The service decides; this writes the decision down: one ``Grant`` row per grantee × resource, ``granting``
at once or ``awaiting_mfa`` while a grantee must confirm with their own code (:mod:`bot.lifecycle.confirmations`),
and the due work that executes them — all in the caller's transaction.

The expiry is fixed here, once: approval time + the duration, on every grant, with its ``expire`` timer. It
never moves except by an extension (:mod:`bot.lifecycle.granting` grants until it, however late the connector
call succeeds), so access that waits for retries, a grantee's MFA or a crashed replica is shorter, never
longer, and a grant still not given at its expiry is closed by that timer without being granted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.lifecycle import confirmations
from bot.lifecycle.events import Events
from policy.config import Flow
from policy.errors import InvalidState
from policy.flows import CompiledPolicy, FlowChoice
from policy.identity import Identity
from policy.resources import Permission, Resource
from policy.states import GrantState, RequestState
from store import due_work
from store.due_work import JobKey, JobKind
from store.models import AccessRequest, Grant


def choice_of(policy: CompiledPolicy, row: AccessRequest, flow: Flow) -> FlowChoice:
    """Rebuild what a request grants from its stored snapshot (a config change never alters it)."""
    resources = []
    for key in row.resource_keys:
        resource = policy.catalog.resource(key)
        if resource is None:
            raise InvalidState(f"Resource {key} is no longer in the catalog; the request cannot be granted.")
        resources.append(resource)
    permission = policy.catalog.permission(row.integration, row.permission)
    if permission is None:
        raise InvalidState(f"Permission {row.permission} is no longer configured.")
    return FlowChoice(flow, tuple(resources), permission, flow.grant_for, flow.require_duration,
                      flow.settings.require_mfa, flow.settings.require_justification,
                      flow.approval.type == "automatic")


def write(session: Session, events: Events, row: AccessRequest, requester: Identity,
          grantees: Sequence[Identity], choice: FlowChoice, now: datetime) -> None:
    """Write the grant intents and the due work that executes them (or asks the grantees to confirm)."""
    row.state = RequestState.GRANTING
    row.updated_at = now
    expires_at = None if row.duration_seconds is None else now + timedelta(seconds=row.duration_seconds)
    written = []
    for grantee in grantees:
        confirm_first = confirmations.needs_confirmation(choice.require_mfa, grantee, requester)
        state = GrantState.AWAITING_MFA if confirm_first else GrantState.GRANTING
        written += [_intent(row, grantee, resource, choice.permission, state, now, expires_at)
                    for resource in choice.resources]
    row.grants.extend(written)
    session.flush()
    if any(g.state == GrantState.GRANTING for g in row.grants):
        due_work.schedule(key=JobKey(JobKind.GRANT, row.id), due_at=now, session=session)
    if expires_at is not None:  # the fixed expiry ends the grant even if it is never granted (retries, MFA)
        for grant in written:  # grants written just now: no timer of theirs exists, none is looked for
            due_work.schedule_new(key=JobKey(JobKind.EXPIRE, grant.id), due_at=expires_at, session=session)
    confirmations.ask_grantees(session, events, row, choice.flow, now)


def _intent(row: AccessRequest, grantee: Identity, resource: Resource, permission: Permission, state: str,
            now: datetime, expires_at: datetime | None) -> Grant:
    """One grant row: everything the connector will be told (see :func:`bot.lifecycle.connector_work.grant_spec`)."""
    return Grant(
        request_id=row.id, grantee_id=grantee.key, grantee_email=grantee.email,
        integration=resource.integration, resource_key=resource.key,
        resource={"type": resource.type, "name": resource.name, "path": resource.path,
                  "source_id": resource.source_id, "tags": dict(resource.tags), "risk": resource.risk},
        permission=permission.name,
        permission_spec={"risk": permission.risk, "roles": list(permission.roles)},
        state=state, created_at=now, extensions_used=0, attempts=0, expires_at=expires_at,
    )
