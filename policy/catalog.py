"""The resource catalog and target resolution (SPEC §4): targets, bundles, scopes → rules over entitlements.

Built once per config load (and again when discovery brings new resources). A target is compiled into a
:class:`TargetRule`: a cheap test ``allows(resource, permission)`` plus the candidate resources it can offer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from policy.config import BundleTarget, Config, IntegrationBase, IntegrationTarget, ScopeTarget, Target
from policy.query import Query, parse_query
from policy.resources import Entitlement, Permission, Resource

ResourcePredicate = Callable[[Resource], bool]


def _always(_: Resource) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class TargetRule:
    """What one target offers: resources of ``integration`` (all when None) with ``permissions``."""

    integration: str | None
    resource_type: str | None
    permissions: frozenset[str] | None  # None = every permission of the integration
    resource_predicate: ResourcePredicate = _always
    query: Query | None = None

    def allows(self, resource: Resource, permission: Permission) -> bool:
        if self.integration is not None and resource.integration != self.integration:
            return False
        if permission.integration != resource.integration:
            return False
        if self.resource_type is not None and resource.type != self.resource_type:
            return False
        if self.permissions is not None and permission.name not in self.permissions:
            return False
        if not self.resource_predicate(resource):
            return False
        return self.query is None or self.query.matches(Entitlement(resource, permission))

    def offers(self, resource: Resource, permission: Permission) -> bool:
        """:meth:`allows` for a pair already known to fit the rule's integration and permissions.

        For callers that looked the rule up by (integration, permission), with ``permission`` belonging to
        the resource's integration: only the resource type, the selector and the query are left to check.
        """
        if self.resource_type is not None and resource.type != self.resource_type:
            return False
        if not self.resource_predicate(resource):
            return False
        return self.query is None or self.query.matches(Entitlement(resource, permission))


class Catalog:
    """Every resource and permission the integrations expose, indexed by key and by integration."""

    def __init__(self, config: Config, discovered: Mapping[str, Sequence[Resource]] | None = None) -> None:
        self.integrations: dict[str, IntegrationBase] = {i.name: i for i in config.integrations}
        self.permissions: dict[str, dict[str, Permission]] = {
            i.name: i.catalog_permissions() for i in config.integrations
        }
        self.resources: dict[str, Resource] = {}
        self.by_integration: dict[str, list[Resource]] = {name: [] for name in self.integrations}
        for integration in config.integrations:
            extra = (discovered or {}).get(integration.name, ())
            for resource in [*integration.catalog_resources(), *extra]:
                if resource.key not in self.resources:
                    self.resources[resource.key] = resource
                    self.by_integration[integration.name].append(resource)
        self._bundles = {b.name: b for b in config.bundles}
        self._scopes = {s.name: parse_query(s.query) for s in config.access_scopes}
        self._rules: dict[str, tuple[TargetRule, ...]] = {}
        self._offered: dict[TargetRule, tuple[Resource, ...]] = {}

    def resource(self, key: str) -> Resource | None:
        return self.resources.get(key)

    def permission(self, integration: str, name: str) -> Permission | None:
        return self.permissions.get(integration, {}).get(name)

    def permissions_of(self, integration: str) -> Iterable[Permission]:
        return self.permissions.get(integration, {}).values()

    def offered(self, rule: TargetRule) -> tuple[Resource, ...]:
        """The resources a rule offers with some permission, in catalog order; computed once per rule."""
        found = self._offered.get(rule)
        if found is None:
            if rule.query is None:
                # Without a query the permission check does not depend on the resource: once per integration.
                permitted = {
                    name: any(rule.permissions is None or p in rule.permissions for p in permissions)
                    for name, permissions in self.permissions.items()
                }
                found = tuple(r for r in self.candidates(rule) if permitted.get(r.integration, False))
            else:
                found = tuple(
                    resource
                    for resource in self.candidates(rule)
                    if any(rule.allows(resource, p) for p in self.permissions_of(resource.integration))
                )
            self._offered[rule] = found
        return found

    def candidates(self, rule: TargetRule) -> Iterator[Resource]:
        """Resources a rule may offer (before the permission check)."""
        pools = (
            [self.by_integration.get(rule.integration, [])]
            if rule.integration
            else self.by_integration.values()
        )
        for pool in pools:
            for resource in pool:
                if (
                    rule.resource_type is None or resource.type == rule.resource_type
                ) and rule.resource_predicate(resource):
                    yield resource

    def rules_for(self, target: Target) -> list[TargetRule]:
        """Compile one flow target (bundles expand into their targets).

        Equal targets (the same bundle or scope in many flows, copies of one target) share their rules, so a
        decision that has checked a rule for a resource need not check it again for another flow.
        """
        key = f"{type(target).__name__}:{target.model_dump_json()}"
        rules = self._rules.get(key)
        if rules is None:
            rules = self._rules[key] = tuple(self._compile(target))
        return list(rules)

    def _compile(self, target: Target) -> list[TargetRule]:
        if isinstance(target, IntegrationTarget):
            return [_integration_rule(target)]
        if isinstance(target, BundleTarget):
            return [_integration_rule(t) for t in self._bundles[target.bundle].targets]
        if isinstance(target, ScopeTarget):
            permissions = frozenset(target.permissions) if target.permissions else None
            return [TargetRule(None, None, permissions, query=self._scopes[target.access_scope])]
        raise TypeError(f"unknown target {target!r}")

    def entitlements(self, rule: TargetRule) -> Iterator[Entitlement]:
        for resource in self.candidates(rule):
            for permission in self.permissions_of(resource.integration):
                if rule.allows(resource, permission):
                    yield Entitlement(resource, permission)


def _integration_rule(target: IntegrationTarget) -> TargetRule:
    selector = target.resources
    predicate: ResourcePredicate = _always
    query = None
    if selector.names is not None:
        names = frozenset(selector.names)
        predicate = lambda r: r.name in names  # noqa: E731
    elif selector.except_ is not None:
        excluded = frozenset(selector.except_)
        predicate = lambda r: r.name not in excluded  # noqa: E731
    elif selector.tags is not None and len(selector.tags) == 1:
        ((key, value),) = selector.tags.items()
        predicate = lambda r: r.tag(key) == value  # noqa: E731
    elif selector.tags is not None:
        wanted = tuple(selector.tags.items())
        predicate = lambda r: all(r.tag(k) == v for k, v in wanted)  # noqa: E731
    elif selector.query is not None:
        query = parse_query(selector.query)
    return TargetRule(
        integration=target.integration,
        resource_type=target.resource_type,
        permissions=frozenset(target.permissions),
        resource_predicate=predicate,
        query=query,
    )
