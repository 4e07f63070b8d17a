"""Who may request what, for whom, for how long — compiled once per config load (SPEC §3, §5).

:class:`CompiledPolicy` indexes the flows by the requestor keys they need (``group``/``user``/``oncall`` values),
so deciding for one user looks only at the flows that can concern them, not at every flow in the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from policy.catalog import Catalog, TargetRule
from policy.conditions import identity_keys, index_keys, matches
from policy.config import Config, Flow
from policy.directory import DirectoryIndex
from policy.errors import InvalidRequest, NotEligible
from policy.identity import Identity
from policy.resources import Permission, Resource
from policy.windows import in_window

MAX_RESOURCES_PER_REQUEST = 100


@dataclass(frozen=True, slots=True)
class CompiledFlow:
    flow: Flow
    rules: tuple[TargetRule, ...]
    approvers_needed: int  # 0 = automatic; used to prefer the lightest flow

    @property
    def name(self) -> str:
        return self.flow.name

    def allows(self, resource: Resource, permission: Permission) -> bool:
        return any(rule.allows(resource, permission) for rule in self.rules)


@dataclass(frozen=True, slots=True)
class FlowChoice:
    """The flow a request falls under, and what it demands (the decision the service acts on)."""

    flow: Flow
    resources: tuple[Resource, ...]
    permission: Permission
    max_duration: timedelta | None
    require_duration: bool
    require_mfa: bool
    require_justification: bool
    automatic_approval: bool


class CompiledPolicy:
    """The config compiled into indexes. Immutable; rebuild on config reload."""

    def __init__(self, config: Config, catalog: Catalog | None = None) -> None:
        self.config = config
        self.catalog = catalog or Catalog(config)
        self.directory = DirectoryIndex(config.directory)
        self.admins = frozenset(a.lower() for a in config.admins)
        self._spaces = {s.name: s for s in config.spaces}
        self.flows: dict[str, CompiledFlow] = {}
        self._by_key: dict[tuple[str, str], list[CompiledFlow]] = {}
        self._unindexed: list[CompiledFlow] = []
        self.owners: dict[str, frozenset[str]] = {
            i.name: frozenset(o.lower() for o in i.owners) for i in config.integrations
        }
        for flow in config.flows:
            rules = tuple(rule for target in flow.targets for rule in self.catalog.rules_for(target))
            needed = 0 if flow.approval.type == "automatic" else len(flow.approval.groups)
            compiled = CompiledFlow(flow, rules, needed if flow.approval.combine == "all_of" else min(needed, 1))
            self.flows[flow.name] = compiled
            keys = index_keys(flow.requestors)
            if keys is None:
                self._unindexed.append(compiled)
            else:
                for key in keys:
                    self._by_key.setdefault(key, []).append(compiled)

    # --- who may use which flow --------------------------------------------------------------------------------

    def usable_flows(self, identity: Identity, now: datetime, *, kind: str = "self_serve") -> list[CompiledFlow]:
        """Flows of ``kind`` whose requestors match, whose window is open and whose space includes the user."""
        seen: set[str] = set()
        out: list[CompiledFlow] = []
        candidates: list[Iterable[CompiledFlow]] = [self._by_key.get(k, ()) for k in identity_keys(identity)]
        candidates.append(self._unindexed)
        for group in candidates:
            for compiled in group:
                flow = compiled.flow
                if flow.name in seen or flow.type != kind:
                    continue
                seen.add(flow.name)
                if self._may_use(flow, identity, now):
                    out.append(compiled)
        out.sort(key=lambda c: c.name)
        return out

    def _may_use(self, flow: Flow, identity: Identity, now: datetime) -> bool:
        if identity.deactivated or identity.is_bot:
            return False
        if not in_window(flow.when, now, self.config.timezone):
            return False
        if flow.space is not None:
            space = self._spaces[flow.space]
            if space.members is not None and not matches(space.members, identity):
                return False
        return matches(flow.requestors, identity)

    def is_admin(self, identity: Identity, *, space: str | None = None) -> bool:
        if identity.ids & self.admins:
            return True
        if space is not None and space in self._spaces:
            return bool(identity.ids & {a.lower() for a in self._spaces[space].admins})
        return False

    def owned_integrations(self, identity: Identity) -> frozenset[str]:
        return frozenset(name for name, owners in self.owners.items() if identity.ids & owners)

    # --- what they may request --------------------------------------------------------------------------------

    def requestable_resources(
        self, identity: Identity, now: datetime, text: str = "", *, limit: int = 100
    ) -> list[Resource]:
        """Resources the user may request now whose name, path or type contains ``text``, best matches first."""
        needle = text.strip().lower()
        found: dict[str, Resource] = {}
        for compiled in self.usable_flows(identity, now):
            for rule in compiled.rules:
                for resource in self.catalog.candidates(rule):
                    if resource.key in found:
                        continue
                    haystack = f"{resource.name} {resource.path} {resource.type} {resource.integration}".lower()
                    if needle and needle not in haystack:
                        continue
                    if any(rule.allows(resource, p) for p in self.catalog.permissions_of(resource.integration)):
                        found[resource.key] = resource
                if len(found) >= limit * 4:
                    break
        ranked = sorted(found.values(), key=lambda r: (not r.name.lower().startswith(needle), r.name, r.key))
        return ranked[:limit]

    def permissions_for(self, identity: Identity, now: datetime, resource_key: str) -> list[Permission]:
        resource = self.catalog.resource(resource_key)
        if resource is None:
            return []
        flows = self.usable_flows(identity, now)
        return [p for p in self.catalog.permissions_of(resource.integration) if any(f.allows(resource, p) for f in flows)]

    def choose_flow(
        self,
        requester: Identity,
        now: datetime,
        resource_keys: Sequence[str],
        permission_name: str,
        grantees: Sequence[Identity] = (),
    ) -> FlowChoice:
        """The flow that lets ``requester`` ask for ``permission_name`` on every resource for every grantee.

        Prefers the flow needing the fewest approvals, then the longest ``grant_for``, then the name. Raises
        :class:`NotEligible` / :class:`InvalidRequest` saying why nothing fits.
        """
        if not resource_keys:
            raise InvalidRequest("Pick at least one resource.", field="resource")
        if len(resource_keys) > MAX_RESOURCES_PER_REQUEST:
            raise InvalidRequest(
                f"A request covers at most {MAX_RESOURCES_PER_REQUEST} resources.", field="resource"
            )
        resources = []
        for key in dict.fromkeys(resource_keys):
            resource = self.catalog.resource(key)
            if resource is None:
                raise InvalidRequest(f"Unknown resource {key!r}.", field="resource")
            resources.append(resource)
        integrations = {r.integration for r in resources}
        if len(integrations) != 1:
            raise InvalidRequest("All resources of one request must come from one integration.", field="resource")
        permission = self.catalog.permission(resources[0].integration, permission_name)
        if permission is None:
            raise InvalidRequest(f"Unknown permission {permission_name!r}.", field="permission")
        usable = [
            c for c in self.usable_flows(requester, now) if all(c.allows(r, permission) for r in resources)
        ]
        if not usable:
            raise NotEligible(
                f"No access flow lets you request {permission.name} on "
                f"{', '.join(r.name for r in resources)} right now.",
                field="resource",
            )
        refusals: list[str] = []
        fitting = []
        for compiled in usable:
            reason = self.grantee_refusal(compiled.flow, requester, grantees)
            if reason is None:
                fitting.append(compiled)
            else:
                refusals.append(reason)
        if not fitting:
            raise NotEligible(refusals[0], field="grantees")
        best = min(
            fitting,
            key=lambda c: (c.approvers_needed, -(c.flow.grant_for or timedelta.max).total_seconds(), c.name),
        )
        flow = best.flow
        return FlowChoice(
            flow=flow,
            resources=tuple(resources),
            permission=permission,
            max_duration=flow.grant_for,
            require_duration=flow.require_duration,
            require_mfa=flow.settings.require_mfa,
            require_justification=flow.settings.require_justification,
            automatic_approval=flow.approval.type == "automatic",
        )

    def grantee_refusal(self, flow: Flow, requester: Identity, grantees: Sequence[Identity]) -> str | None:
        """Why ``requester`` may not request for ``grantees`` under ``flow`` (None = allowed)."""
        for grantee in grantees or (requester,):
            if grantee.same_person(requester):
                if "themselves" not in flow.request_for:
                    return f"Flow {flow.name} does not let you request for yourself."
                continue
            if grantee.deactivated or grantee.is_bot:
                return f"{grantee.label()} is not an active user."
            is_report = bool(grantee.manager and grantee.manager.lower() in requester.ids)
            if is_report and "direct_reports" in flow.request_for:
                continue
            if "others" in flow.request_for and (flow.grantees is None or matches(flow.grantees, grantee)):
                continue
            return f"You may not request access for {grantee.label()} under flow {flow.name}."
        return None
