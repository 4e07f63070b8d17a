"""The same question to three engines: may this user request this permission on this resource?

accessbot answers with :meth:`CompiledPolicy.choose_flow` (a flow, or ``NotEligible``). The bench's flows are
translated, exactly, into a Cedar policy set (``cedarpy``) and a Casbin RBAC model (``casbin``): a requestor
group, one integration, some permissions and a resource selector (``any``, ``tags``, ``names``) or a bundle of
such targets. Every flow of the data sets is self-serve, always open and lets users request for themselves, so
nothing else decides. :func:`agreement` checks that the three give the same answers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from policy.config import BundleTarget, ConditionSet, Config, IntegrationTarget
from policy.errors import NotEligible
from policy.flows import CompiledPolicy
from policy.identity import Identity


@dataclass(frozen=True, slots=True)
class Case:
    """One question: may ``identity`` request ``permission`` on the resource ``resource_key``?"""

    identity: Identity
    resource_key: str
    permission: str


def accessbot_decides(policy: CompiledPolicy, case: Case, now: Any) -> bool:
    try:
        policy.choose_flow(case.identity, now, [case.resource_key], case.permission)
    except NotEligible:
        return False
    return True


def _requestor_group(requestors: ConditionSet) -> str:
    (condition,) = requestors.conditions
    if condition.attribute != "group" or condition.op != "is" or len(condition.values) != 1:
        raise ValueError(f"cannot translate requestors {requestors!r}")
    return condition.values[0]


def _targets(config: Config) -> list[tuple[str, IntegrationTarget]]:
    """(requestor group, integration target) for every target of every flow, bundles expanded."""
    bundles = {b.name: b for b in config.bundles}
    out: list[tuple[str, IntegrationTarget]] = []
    for flow in config.flows:
        if flow.type != "self_serve" or flow.when != "always" or flow.space or "themselves" not in flow.request_for:
            raise ValueError(f"flow {flow.name} is not one the engines can be given")
        group = _requestor_group(flow.requestors)
        for target in flow.targets:
            if isinstance(target, BundleTarget):
                out += [(group, t) for t in bundles[target.bundle].targets]
            elif isinstance(target, IntegrationTarget):
                out.append((group, target))
            else:
                raise ValueError(f"cannot translate target {target!r}")
    return out


# --- Cedar --------------------------------------------------------------------------------------------------


def _cedar_string(value: str) -> str:
    return json.dumps(value)


def cedar_policies(config: Config) -> str:
    """One ``permit`` per (flow, integration target)."""
    policies = []
    for group, target in _targets(config):
        actions = ", ".join(f"Action::{_cedar_string(p)}" for p in target.permissions)
        conditions = []
        if target.resource_type:
            conditions.append(f"resource.type == {_cedar_string(target.resource_type)}")
        selector = target.resources
        if selector.tags:
            conditions += [f"resource.tags.{k} == {_cedar_string(v)}" for k, v in selector.tags.items()]
        elif selector.names:
            names = ", ".join(_cedar_string(n) for n in selector.names)
            conditions.append(f"[{names}].contains(resource.name)")
        elif not selector.any:
            raise ValueError(f"cannot translate selector {selector!r}")
        when = f" when {{ {' && '.join(conditions)} }}" if conditions else ""
        policies.append(
            f"permit(principal in Group::{_cedar_string(group)}, action in [{actions}], "
            f"resource in Integration::{_cedar_string(target.integration)}){when};"
        )
    return "\n".join(policies)


def cedar_entities(policy: CompiledPolicy, identities: Sequence[Identity]) -> str:
    entities: list[dict[str, Any]] = []
    groups = sorted({g for identity in identities for g in identity.groups})
    entities += [{"uid": {"type": "Group", "id": g}, "attrs": {}, "parents": []} for g in groups]
    entities += [
        {
            "uid": {"type": "User", "id": identity.key},
            "attrs": {},
            "parents": [{"type": "Group", "id": g} for g in sorted(identity.groups)],
        }
        for identity in identities
    ]
    entities += [
        {"uid": {"type": "Integration", "id": name}, "attrs": {}, "parents": []} for name in policy.catalog.integrations
    ]
    entities += [
        {
            "uid": {"type": "Resource", "id": resource.key},
            "attrs": {"name": resource.name, "type": resource.type, "tags": dict(resource.tags)},
            "parents": [{"type": "Integration", "id": resource.integration}],
        }
        for resource in policy.catalog.resources.values()
    ]
    return json.dumps(entities)


def cedar_request(case: Case) -> dict[str, Any]:
    return {
        "principal": {"type": "User", "id": case.identity.key},
        "action": {"type": "Action", "id": case.permission},
        "resource": {"type": "Resource", "id": case.resource_key},
        "context": {},
    }


class Cedar:
    """cedarpy with the policies and entities parsed once (``PolicySet``, ``Entities`` handles)."""

    def __init__(self, config: Config, policy: CompiledPolicy, identities: Sequence[Identity]) -> None:
        import cedarpy

        self._cedarpy = cedarpy
        self.policies = cedarpy.PolicySet.from_str(cedar_policies(config))
        self.entities = cedarpy.Entities.from_json_str(cedar_entities(policy, identities))

    def decide(self, requests: list[dict[str, Any]]) -> list[bool]:
        results = self._cedarpy.is_authorized_batch(requests, self.policies, self.entities)
        return [r.allowed for r in results]


# --- Casbin -------------------------------------------------------------------------------------------------

CASBIN_MODEL = """
[request_definition]
r = sub, obj, act
[policy_definition]
p = sub, obj, act
[role_definition]
g = _, _
g2 = _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = g(r.sub, p.sub) && g2(r.obj, p.obj) && r.act == p.act
"""


class Casbin:
    """pycasbin RBAC: users in groups (``g``), resources in resource sets (``g2``), (group, set, permission)."""

    def __init__(self, config: Config, policy: CompiledPolicy, identities: Sequence[Identity]) -> None:
        import casbin

        model = casbin.Model()
        model.load_model_from_text(CASBIN_MODEL)
        self.enforcer = casbin.Enforcer(model)
        rules: set[tuple[str, str, str]] = set()
        sets: set[tuple[str, str]] = set()
        by_integration = policy.catalog.by_integration
        for group, target in _targets(config):
            selector = target.resources
            if target.resource_type:
                raise ValueError("resource_type is not translated for casbin")
            objects: list[str]
            if selector.any:
                objects = [target.integration]
                sets.update((r.key, target.integration) for r in by_integration[target.integration])
            elif selector.tags:
                name = target.integration + "?" + "&".join(f"{k}={v}" for k, v in sorted(selector.tags.items()))
                objects = [name]
                wanted = sorted(selector.tags.items())
                sets.update(
                    (r.key, name) for r in by_integration[target.integration] if all(r.tag(k) == v for k, v in wanted)
                )
            elif selector.names:
                names = set(selector.names)
                objects = [r.key for r in by_integration[target.integration] if r.name in names]
            else:
                raise ValueError(f"cannot translate selector {selector!r}")
            rules.update((group, obj, permission) for obj in objects for permission in target.permissions)
        self.enforcer.add_policies(sorted([list(r) for r in rules]))
        self.enforcer.add_grouping_policies(sorted([i.key, g] for i in identities for g in i.groups))
        self.enforcer.add_named_grouping_policies("g2", sorted([list(s) for s in sets]))

    def decide(self, case: Case) -> bool:
        return bool(self.enforcer.enforce(case.identity.key, case.resource_key, case.permission))


def agreement(
    policy: CompiledPolicy, cedar: Cedar | None, casbin: Casbin | None, cases: Sequence[Case], now: Any
) -> str:
    """How many answers the engines share with accessbot, e.g. ``"2000/2000"``; allowed ones in brackets."""
    ours = [accessbot_decides(policy, c, now) for c in cases]
    parts = [f"{sum(ours)} of {len(ours)} allowed"]
    if cedar is not None:
        theirs = cedar.decide([cedar_request(c) for c in cases])
        parts.append(f"cedar agrees {sum(a == b for a, b in zip(ours, theirs, strict=True))}/{len(ours)}")
    if casbin is not None:
        theirs = [casbin.decide(c) for c in cases]
        parts.append(f"casbin agrees {sum(a == b for a, b in zip(ours, theirs, strict=True))}/{len(ours)}")
    return "; ".join(parts)
