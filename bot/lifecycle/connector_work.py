"""What every piece of connector work shares: the stores, the connectors, the clock, the events (SPEC §5, §7)."""

from __future__ import annotations

import json
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

# run freshly written due work at once (the worker's run_now), or not at all; True when it ran in the caller's
# thread (its effects are in the database now), False when it was handed on (a background thread, the scheduler)
RunNow = Callable[[JobKey], bool]


def run_later(_key: JobKey) -> bool:
    """The default :data:`RunNow`: leave the work to the scheduler's next tick."""
    return False


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


def grant_spec(grant: Grant) -> GrantSpec:
    """What the connector is told of a grant."""
    return _spec(grant, _resource(grant.integration, grant.resource),
                 _permission(grant.integration, grant.permission, grant.permission_spec))


class GrantSpecs:
    """:func:`grant_spec` for many rows of ``store.grants.GRANT_COLUMNS`` (their JSON columns as text): each
    distinct resource and permission is parsed and built once, however many grants share it."""

    def __init__(self) -> None:
        self._resources: dict[tuple[str, str], Resource] = {}
        self._permissions: dict[tuple[str, str, str], Permission] = {}

    def of(self, row: Row[Any]) -> GrantSpec:
        integration = row.integration
        resource = self._resources.get((integration, row.resource_json))
        if resource is None:
            resource = _resource(integration, json.loads(row.resource_json))
            self._resources[(integration, row.resource_json)] = resource
        permission = self._permissions.get((integration, row.permission, row.permission_spec_json))
        if permission is None:
            permission = _permission(integration, row.permission, json.loads(row.permission_spec_json))
            self._permissions[(integration, row.permission, row.permission_spec_json)] = permission
        return _spec(row, resource, permission)


def _resource(integration: str, raw: Mapping[str, Any]) -> Resource:
    return Resource(
        integration=integration,
        type=str(raw.get("type", "")),
        name=str(raw.get("name", "")),
        path=str(raw.get("path", "")),
        source_id=str(raw.get("source_id", "")),
        tags=tuple(sorted(dict(raw.get("tags", {})).items())),
        risk=raw.get("risk", "medium"),
    )


def _permission(integration: str, name: str, raw: Mapping[str, Any]) -> Permission:
    return Permission(integration=integration, name=name, risk=raw.get("risk", "medium"),
                      roles=tuple(raw.get("roles", ())))


def _spec(grant: Grant | Row[Any], resource: Resource, permission: Permission) -> GrantSpec:
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
