"""Who may request what, for whom, for how long — compiled once per config load (SPEC §3, §5).

:class:`CompiledPolicy` is built for speed at load time, so that a decision costs a few dictionary lookups:

- which flows a user may use (requestors, space, active) is found through an index of the requestor keys and
  remembered (:class:`policy.flow_index.FlowIndex`); only the time windows are looked at per call;
- requestor, space and window rules are compiled into closures (condition values folded, zones resolved);
- each flow maps (integration, permission) to the target rules that can offer it, equal targets share one
  rule, and the flows of a user that offer a permission are kept in the order
  :meth:`CompiledPolicy.choose_flow` prefers them, so the first flow that fits is the choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from policy.catalog import Catalog, TargetRule
from policy.conditions import Matcher, compile_conditions, matches
from policy.config import Config, Flow
from policy.directory import DirectoryIndex
from policy.errors import InvalidRequest, NotEligible
from policy.flow_index import CompiledFlow, FlowIndex, Offer, PairKey, Usable
from policy.identity import Identity
from policy.resources import Permission, Resource
from policy.typeahead import Typeahead
from policy.windows import compile_window

__all__ = ["MAX_RESOURCES_PER_REQUEST", "CompiledFlow", "CompiledPolicy", "FlowChoice"]

MAX_RESOURCES_PER_REQUEST = 100


_tuple_new = tuple.__new__


class FlowChoice(NamedTuple):
    """The flow a request falls under, and what it demands (the decision the service acts on).

    Immutable; a named tuple rather than a frozen dataclass because a decision builds one per call and a
    tuple is built several times faster.
    """

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

    def __init__(
        self, config: Config, catalog: Catalog | None = None, *, previous: CompiledPolicy | None = None
    ) -> None:
        """``previous``: the policy this one replaces; what did not change is taken over from it."""
        self.config = config
        self.catalog = catalog or Catalog(config)
        self.typeahead: Typeahead = Typeahead(self.catalog, previous.typeahead if previous is not None else None)
        self.directory = DirectoryIndex(config.directory)
        self.admins = frozenset(a.lower() for a in config.admins)
        self._spaces = {s.name: s for s in config.spaces}
        self._space_admins = {s.name: frozenset(a.lower() for a in s.admins) for s in config.spaces}
        self._space_members: dict[str, Matcher | None] = {
            s.name: compile_conditions(s.members) if s.members is not None else None for s in config.spaces
        }
        # (integration, permission name) -> that pair (one tuple, which the caches keep) and the permission
        self._permissions: dict[PairKey, tuple[PairKey, Permission]] = {
            (integration, name): ((integration, name), permission)
            for integration, permissions in self.catalog.permissions.items()
            for name, permission in permissions.items()
        }
        self.flows: dict[str, CompiledFlow] = {}
        self._index = FlowIndex(self._space_members)
        self.owners: dict[str, frozenset[str]] = {
            i.name: frozenset(o.lower() for o in i.owners) for i in config.integrations
        }
        for flow in config.flows:
            compiled = self._compile(flow)
            self.flows[flow.name] = compiled
            self._index.add(compiled)
        self._self_serve = self._index.self_serve

    def _compile(self, flow: Flow) -> CompiledFlow:
        rules = tuple(rule for target in flow.targets for rule in self.catalog.rules_for(target))
        by_pair: dict[PairKey, list[TargetRule]] = {}
        for rule in rules:
            integrations = (
                [rule.integration] if rule.integration is not None else list(self.catalog.permissions)
            )
            for integration in integrations:
                for permission in self.catalog.permissions.get(integration, {}):
                    if rule.permissions is None or permission in rule.permissions:
                        pair = by_pair.setdefault((integration, permission), [])
                        if rule not in pair:
                            pair.append(rule)
        needed = 0 if flow.approval.type == "automatic" else len(flow.approval.groups)
        needed = needed if flow.approval.combine == "all_of" else min(needed, 1)
        longest = (flow.grant_for or timedelta.max).total_seconds()
        compiled = CompiledFlow(
            flow,
            rules,
            needed,
            rank=(needed, -longest, flow.name),
            inside=compile_window(flow.when, self.config.timezone),
            for_themselves="themselves" in flow.request_for,
            demands=(
                flow.grant_for,
                flow.require_duration,
                flow.settings.require_mfa,
                flow.settings.require_justification,
                flow.approval.type == "automatic",
            ),
        )
        compiled.offers.update((pair, Offer(compiled, tuple(found))) for pair, found in by_pair.items())
        return compiled

    # --- who may use which flow --------------------------------------------------------------------------

    def _usable(self, identity: Identity, kind: str) -> Usable:
        return self._index.usable(identity, kind)

    def usable_flows(
        self, identity: Identity, now: datetime, *, kind: str = "self_serve"
    ) -> list[CompiledFlow]:
        """Flows of ``kind`` whose requestors match, whose window is open and whose space has the user."""
        usable = self._usable(identity, kind)
        if not usable.windowed:
            return list(usable.by_name)
        return [c for c in usable.by_name if c.inside is None or c.inside(now)]

    def is_admin(self, identity: Identity, *, space: str | None = None) -> bool:
        if identity.ids & self.admins:
            return True
        if space is not None and space in self._space_admins:
            return bool(identity.ids & self._space_admins[space])
        return False

    def owned_integrations(self, identity: Identity) -> frozenset[str]:
        return frozenset(name for name, owners in self.owners.items() if identity.ids & owners)

    # --- what they may request ---------------------------------------------------------------------------

    def requestable_resources(
        self, identity: Identity, now: datetime, text: str = "", *, limit: int = 100
    ) -> list[Resource]:
        """Resources the user may request now whose name, path or type contain ``text``, best first.

        Names that start with the text come first, then by name (see :mod:`policy.typeahead`).
        """
        rules = [rule for compiled in self.usable_flows(identity, now) for rule in compiled.rules]
        return self.typeahead.search(rules, text, limit)

    def permissions_for(self, identity: Identity, now: datetime, resource_key: str) -> list[Permission]:
        resource = self.catalog.resource(resource_key)
        if resource is None:
            return []
        flows = self.usable_flows(identity, now)
        return [
            p
            for p in self.catalog.permissions_of(resource.integration)
            if any(f.allows(resource, p) for f in flows)
        ]

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
        catalog = self.catalog
        resources: tuple[Resource, ...]
        if len(resource_keys) == 1:  # the common case, without the general checks below
            resource = catalog.resources.get(resource_keys[0])
            if resource is None:
                raise InvalidRequest(f"Unknown resource {resource_keys[0]!r}.", field="resource")
            resources = (resource,)
        else:
            resources = self._resources_of(resource_keys)
            resource = resources[0]
        known = self._permissions.get((resource.integration, permission_name))
        if known is None:
            raise InvalidRequest(f"Unknown permission {permission_name!r}.", field="permission")
        pair, permission = known
        usable = self._self_serve.get(requester.match_key)
        if usable is None:
            usable = self._usable(requester, "self_serve")
        offering = usable.offering.get(pair)
        if offering is None:
            offering = usable.offering_of(pair)
        single = len(resources) == 1
        # id(rule) -> offers every resource: rules are shared between flows (needed when several flows offer)
        checked: dict[int, bool] | None = {} if len(offering) > 1 else None
        allowing: list[CompiledFlow] | None = None
        for compiled, rules in offering:  # preferred first: the first fit wins
            if compiled.inside is not None and not compiled.inside(now):
                continue
            if len(rules) == 1:
                rule = rules[0]
                offered = checked.get(id(rule)) if checked is not None else None
                if offered is None:
                    offered = (
                        rule.offers(resource, permission)
                        if single
                        else all(rule.offers(r, permission) for r in resources)
                    )
                    if checked is not None:
                        checked[id(rule)] = offered
            else:
                offered = all(any(rule.offers(r, permission) for rule in rules) for r in resources)
            if not offered:
                continue
            if (
                compiled.for_themselves
                if not grantees
                else self.grantee_refusal(compiled.flow, requester, grantees) is None
            ):
                # FlowChoice(flow, resources, permission, *demands), without the named tuple's Python __new__
                return _tuple_new(FlowChoice, (compiled.flow, resources, permission, *compiled.demands))
            if allowing is None:
                allowing = []
            allowing.append(compiled)
        if allowing is None:
            names = resource.name if single else ", ".join(r.name for r in resources)
            raise NotEligible(
                f"No access flow lets you request {permission.name} on {names} right now.", field="resource"
            )
        first = min(allowing, key=lambda c: c.name)
        raise NotEligible(self.grantee_refusal(first.flow, requester, grantees) or "", field="grantees")

    def _resources_of(self, resource_keys: Sequence[str]) -> tuple[Resource, ...]:
        """The resources of a request, once each, all of one integration; raises :class:`InvalidRequest`."""
        keys = list(dict.fromkeys(resource_keys))
        if not keys:
            raise InvalidRequest("Pick at least one resource.", field="resource")
        if len(keys) > MAX_RESOURCES_PER_REQUEST:
            raise InvalidRequest(
                f"A request covers at most {MAX_RESOURCES_PER_REQUEST} resources.", field="resource"
            )
        catalog_resources = self.catalog.resources
        resources = []
        for key in keys:
            resource = catalog_resources.get(key)
            if resource is None:
                raise InvalidRequest(f"Unknown resource {key!r}.", field="resource")
            resources.append(resource)
        integration = resources[0].integration
        for resource in resources:
            if resource.integration != integration:
                raise InvalidRequest(
                    "All resources of one request must come from one integration.", field="resource"
                )
        return tuple(resources)

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

