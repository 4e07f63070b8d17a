"""What the request modal offers a user now (SPEC §6): a pure value decided from the flows, no I/O.

The view (``handlers/views/request_modal.py``) renders it; every submission is decided again by the service.
The form follows the chosen resources and permission: only the flows that offer that permission on every
chosen resource decide what is asked (for whom, how long, MFA, justification).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from policy.config import ALL_DAYS, Window
from policy.flows import CompiledFlow, CompiledPolicy
from policy.identity import Identity
from policy.picker import common_permissions, configured_risk, flows_for
from policy.resources import Permission, Resource
from policy.windows import in_window

Grantees = Literal["none", "optional", "required"]


@dataclass(frozen=True, slots=True)
class RequestForm:
    resources: tuple[Resource, ...] = ()  # the chosen resources (bundles expanded)
    permissions: tuple[tuple[Permission, str | None], ...] = ()  # what they may ask for on all, with its risk
    permission: str | None = None  # the chosen permission
    grantees: Grantees = "none"  # "For whom": not shown, optional (empty = yourself) or required
    grantee_hint: str = ""
    show_duration: bool = True  # some applicable flow has the requester pick hours
    require_duration: bool = False  # every applicable flow does
    max_hours: float | None = None  # the longest any applicable flow grants (None: unknown or indefinite)
    indefinite: bool = False  # an applicable flow grants with no end
    require_justification: bool = False
    require_mfa: bool = False
    problem: str | None = None  # why the chosen resources cannot go in one request
    opens_next: tuple[str, datetime] | None = None  # nothing usable now: the flow that opens first, and when


def request_form(
    policy: CompiledPolicy, user: Identity, now: datetime, resource_keys: Sequence[str] = (),
    permission: str | None = None,
) -> RequestForm:
    """The form for ``user`` at ``now``, after they chose ``resource_keys`` (and ``permission``) if they did."""
    flows = policy.usable_flows(user, now)
    if not flows:
        return RequestForm(opens_next=next_opening(policy, user, now))
    resources = tuple(policy.catalog.resources[k] for k in dict.fromkeys(resource_keys)
                      if k in policy.catalog.resources)
    permissions = common_permissions(flows, policy.catalog, resources) if resources else []
    problem = None
    if resources and not permissions:
        problem = ("These resources come from different integrations; request each integration's separately."
                   if len({r.integration for r in resources}) > 1
                   else "No single flow offers one permission on all of these resources; request them apart.")
    chosen = [p for p in permissions if p.name == permission] or permissions
    relevant = flows_for(flows, resources, chosen) if resources and chosen else flows
    grantees, grantee_hint = _grantees(relevant)
    return RequestForm(
        resources=resources,
        permissions=tuple((p, configured_risk(policy.config, resources, p)) for p in permissions),
        permission=permission if any(p.name == permission for p in permissions) else None,
        grantees=grantees,
        grantee_hint=grantee_hint,
        show_duration=any(f.flow.require_duration for f in relevant),
        require_duration=all(f.flow.require_duration for f in relevant),
        max_hours=_max_hours(relevant),
        indefinite=any(f.flow.grant_for is None for f in relevant),
        require_justification=all(f.flow.settings.require_justification for f in relevant),
        require_mfa=any(f.flow.settings.require_mfa for f in relevant),
        problem=problem,
    )


def _max_hours(flows: Sequence[CompiledFlow]) -> float | None:
    limits = [f.flow.grant_for for f in flows]
    if not limits or any(t is None for t in limits):
        return None
    return max(t.total_seconds() for t in limits if t is not None) / 3600


def _grantees(flows: Sequence[CompiledFlow]) -> tuple[Grantees, str]:
    """Whether "For whom" shows, and a hint that says only what these flows allow."""
    kinds = {k for f in flows for k in f.flow.request_for}
    others, reports, themselves = "others" in kinds, "direct_reports" in kinds, "themselves" in kinds
    if not (others or reports):
        return "none", ""
    whom = "people" if others else "your direct reports"
    if themselves:
        return "optional", f"Pick {whom} to request for them; leave empty to request for yourself."
    return "required", f"This flow grants access to others only: pick {whom} (up to 20)."


def next_opening(policy: CompiledPolicy, user: Identity, now: datetime) -> tuple[str, datetime] | None:
    """The windowed flow ``user`` could use that opens soonest after ``now``, and when it opens."""
    best: tuple[str, datetime] | None = None
    for flow in policy.config.flows:
        if flow.type != "self_serve" or not isinstance(flow.when, Window):
            continue
        start = _next_start(flow.when, now, policy.config.timezone)
        if start is None or (best is not None and start >= best[1]):
            continue
        if any(c.name == flow.name for c in policy.usable_flows(user, start + timedelta(seconds=1))):
            best = (flow.name, start)
    return best


def _next_start(window: Window, now: datetime, default_timezone: str) -> datetime | None:
    zone = ZoneInfo(window.timezone or default_timezone)
    local = now.astimezone(zone)
    for days_ahead in range(8):
        day = local.date() + timedelta(days=days_ahead)
        if ALL_DAYS[day.weekday()] not in window.days:
            continue
        start = datetime.combine(day, window.from_.replace(tzinfo=None), tzinfo=zone)
        if start > now and in_window(window, start + timedelta(seconds=1), default_timezone):
            return start.astimezone(now.tzinfo)
    return None
