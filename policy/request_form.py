"""What the request modal offers a user now (SPEC §6): a pure value decided from the flows, no I/O.

The view (``handlers/views/request_modal.py``) renders it; every submission is decided again by the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from policy.flows import CompiledPolicy
from policy.identity import Identity
from policy.resources import Permission, Resource


@dataclass(frozen=True, slots=True)
class RequestForm:
    resource: Resource | None = None  # the chosen resource
    permissions: tuple[Permission, ...] = ()  # what the user may ask for on it
    permission: str | None = None  # the chosen permission
    show_grantees: bool = False  # some flow lets the user request for others or their reports
    max_hours: float | None = None  # the longest any applicable flow grants; None when one has no limit
    require_duration: bool = False
    require_justification: bool = False
    require_mfa: bool = False


def request_form(
    policy: CompiledPolicy, user: Identity, now: datetime, resource_key: str | None = None,
    permission: str | None = None,
) -> RequestForm:
    """The form for ``user`` at ``now``, after they chose ``resource_key`` (and ``permission``) if they did."""
    flows = policy.usable_flows(user, now)
    resource = policy.catalog.resource(resource_key) if resource_key else None
    permissions = policy.permissions_for(user, now, resource.key) if resource else []
    relevant = [f for f in flows if resource is None or any(f.allows(resource, p) for p in permissions)]
    limits = [f.flow.grant_for for f in relevant]
    max_hours = (
        None
        if not limits or any(t is None for t in limits)
        else max(t.total_seconds() for t in limits if t is not None) / 3600
    )
    return RequestForm(
        resource=resource,
        permissions=tuple(permissions),
        permission=permission,
        show_grantees=any({"others", "direct_reports"} & set(f.flow.request_for) for f in relevant),
        max_hours=max_hours,
        require_duration=bool(relevant) and all(f.flow.require_duration for f in relevant),
        require_justification=bool(relevant) and all(f.flow.settings.require_justification for f in relevant),
        require_mfa=any(f.flow.settings.require_mfa for f in relevant),
    )
