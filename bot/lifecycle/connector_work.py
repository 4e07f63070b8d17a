"""What every piece of connector work shares: the stores, the connectors, the clock, the events (SPEC §5, §7)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row

from bot.clock import Clock
from bot.lifecycle.calls import CallRunner
from bot.lifecycle.events import Events
from bot.lifecycle.policy_holder import PolicyHolder
from bot.lifecycle.records import RequestRecord
from bot.security.crypto import SecretBox
from integrations.base import Connector, ConnectorError, GrantSpec
from policy.identity import Identity
from policy.resources import Permission, Resource
from store import requests as request_store
from store.db import Database
from store.due_work import JobKey
from store.models import AccessRequest, Grant

RunNow = Callable[[JobKey], None]  # run freshly written due work at once (the worker's run_now), or not at all


def run_later(_key: JobKey) -> None:
    """The default :data:`RunNow`: leave the work to the scheduler's next tick."""


@dataclass
class ConnectorWork:
    db: Database
    policy: PolicyHolder
    connectors: Mapping[str, Connector]
    clock: Clock
    events: Events
    secrets: SecretBox
    run_now: RunNow = run_later
    calls: CallRunner = field(default_factory=CallRunner)  # connector calls: under a deadline, in parallel

    def connector(self, integration: str) -> Connector:
        try:
            return self.connectors[integration]
        except KeyError:
            raise ConnectorError(f"no connector is configured for integration {integration!r}") from None

    def actor_grants(self, request: AccessRequest, actor: Identity, *, states: frozenset[str]) -> list[Grant]:
        """The actor's own grants of the request in these states; all of them for its requester or an admin."""
        key = actor.key
        mine = [g for g in request.grants if g.state in states and g.grantee_id == key]
        if mine:
            return mine
        if request.requester_id == key or self.policy.current.is_admin(actor):
            return [g for g in request.grants if g.state in states]
        return []

    def record(self, request_id: int) -> RequestRecord:
        with self.db.read() as session:
            row = request_store.get_request(request_id, session=session)
            assert row is not None
            return RequestRecord.of(row)


def grant_spec(grant: Grant | Row[Any]) -> GrantSpec:
    """What the connector is told of a grant (an ORM ``Grant`` or a row of ``store.grants.GRANT_COLUMNS``)."""
    resource = Resource(
        integration=grant.integration,
        type=str(grant.resource.get("type", "")),
        name=str(grant.resource.get("name", "")),
        path=str(grant.resource.get("path", "")),
        source_id=str(grant.resource.get("source_id", "")),
        tags=tuple(sorted(dict(grant.resource.get("tags", {})).items())),
        risk=grant.resource.get("risk", "medium"),
    )
    permission = Permission(
        integration=grant.integration,
        name=grant.permission,
        risk=grant.permission_spec.get("risk", "medium"),
        roles=tuple(grant.permission_spec.get("roles", ())),
    )
    return GrantSpec(
        grant_id=grant.id,
        request_id=grant.request_id,
        grantee_slack_id=grant.grantee_id,
        grantee_email=grant.grantee_email,
        integration=grant.integration,
        resource=resource,
        permission=permission,
        expires_at=grant.expires_at,
        external_ref=grant.external_ref,
    )


