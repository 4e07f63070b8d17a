"""The request modal's resource picker (SPEC §6): short stable option ids, bundles as one item, groups. Pure.

Slack caps an option's ``value`` at 150 characters and its label at 75, while a resource key
(``integration/type/name``) can be longer. So every option carries a *short stable id* — a hash of the resource
key (``r:…``) or of the bundle's name (``b:…``) — resolved back through the catalog when the modal is used; a
resource whose name is 200 characters long stays requestable, and an id never goes stale while the resource
exists (the hash does not depend on the catalog's order). Exact catalog keys are accepted too (scripts).

A bundle is offered as one item ("billing-debug — bundle, 3 resources") when one of the user's flows offers one
of the bundle's permissions on all of its resources, and expands to them when chosen. Options are grouped by
integration.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from weakref import WeakKeyDictionary

from policy.builds import SharedBuild, in_pieces
from policy.catalog import Catalog
from policy.config import BundleTarget, Config
from policy.errors import InvalidRequest
from policy.flows import MAX_RESOURCES_PER_REQUEST, CompiledFlow, CompiledPolicy
from policy.identity import Identity
from policy.resources import RISK_ORDER, Permission, Resource

MAX_OPTIONS = 100  # Slack's limit for an options load (all groups together)
RESOURCE_PREFIX = "r:"
BUNDLE_PREFIX = "b:"


def _digest(text: str) -> str:
    raw = hashlib.blake2b(text.encode(), digest_size=9).digest()
    return base64.urlsafe_b64encode(raw).decode()


def resource_option_id(key: str) -> str:
    """``r:`` and 12 characters: the option value of a resource, the same for the same key on every load."""
    return RESOURCE_PREFIX + _digest(key)


def bundle_option_id(name: str) -> str:
    return BUNDLE_PREFIX + _digest(name)


@dataclass(frozen=True, slots=True)
class PickerOption:
    value: str
    label: str


@dataclass(frozen=True, slots=True)
class OptionGroup:
    label: str  # the integration (or "Bundles" for a bundle spanning integrations)
    options: tuple[PickerOption, ...]


@dataclass(frozen=True, slots=True)
class _Index:
    resources: dict[str, str]  # option id -> resource key
    bundles: dict[str, tuple[str, tuple[str, ...], frozenset[str]]]  # id -> (name, resource keys, permissions)


_indexes: WeakKeyDictionary[Catalog, _Index] = WeakKeyDictionary()
_build = SharedBuild()  # the option ids are built once per catalog, by the first caller


PAUSE_EVERY = 5_000  # option ids built between two calls of a build's ``pause``


def prepare(policy: CompiledPolicy, pause: Callable[[], None] | None = None) -> None:
    """Build the option ids of ``policy``'s resources now (else the first options load builds them); ``pause``
    is called between pieces of the build (a background warm-up stepping aside for requests in progress), except
    while a caller waits for the build: then it goes on at full speed."""
    _index(policy.catalog, policy.config, pause)


def _index(catalog: Catalog, config: Config, pause: Callable[[], None] | None = None) -> _Index:
    found = _indexes.get(catalog)
    if found is not None:
        return found
    with _build.turn():  # the others arriving meanwhile wait for that build
        found = _indexes.get(catalog)
        if found is None:
            found = _indexes[catalog] = _build_index(catalog, config, _build.unless_awaited(pause))
    return found


def _build_index(catalog: Catalog, config: Config, pause: Callable[[], None] | None = None) -> _Index:
    resources = {resource_option_id(key): key for key in in_pieces(catalog.resources, PAUSE_EVERY, pause)}
    bundles = {}
    for bundle in config.bundles:
        keys: dict[str, None] = {}
        for rule in catalog.rules_for(BundleTarget(bundle=bundle.name)):
            keys.update(dict.fromkeys(r.key for r in catalog.offered(rule)))
        permissions = frozenset(p for t in bundle.targets for p in t.permissions)
        bundles[bundle_option_id(bundle.name)] = (bundle.name, tuple(keys), permissions)
    return _Index(resources, bundles)


def resource_label(resource: Resource) -> str:
    return f"{resource.name} · {resource.type}"


def bundle_label(name: str, count: int) -> str:
    return f"{name} — bundle, {count} resource{'s' if count != 1 else ''}"


def resolve(policy: CompiledPolicy, values: Iterable[str]) -> list[str]:
    """The resource keys the picker's selected values stand for (bundles expanded), in order, no repeats."""
    index = _index(policy.catalog, policy.config)
    keys: dict[str, None] = {}
    for value in values:
        if value in index.resources:
            keys[index.resources[value]] = None
        elif value in index.bundles:
            keys.update(dict.fromkeys(index.bundles[value][1]))
        elif value in policy.catalog.resources:
            keys[value] = None
        else:
            raise InvalidRequest("A chosen resource is no longer offered; pick it again.", field="resource")
    if len(keys) > MAX_RESOURCES_PER_REQUEST:
        raise InvalidRequest(f"A request covers at most {MAX_RESOURCES_PER_REQUEST} resources "
                             f"(this one has {len(keys)}).", field="resource")
    return list(keys)


def common_permissions(flows: Sequence[CompiledFlow], catalog: Catalog,
                       resources: Sequence[Resource]) -> list[Permission]:
    """The permissions one of ``flows`` offers on every resource (one integration; none when they span more)."""
    if not resources or len({r.integration for r in resources}) != 1:
        return []
    return [
        p for p in catalog.permissions_of(resources[0].integration)
        if any(all(f.allows(r, p) for r in resources) for f in flows)
    ]


def flows_for(flows: Sequence[CompiledFlow], resources: Sequence[Resource],
              permissions: Sequence[Permission]) -> list[CompiledFlow]:
    """The flows that offer one of ``permissions`` on every resource."""
    return [f for f in flows if any(all(f.allows(r, p) for r in resources) for p in permissions)]


def options(policy: CompiledPolicy, identity: Identity, now: datetime, text: str = "") -> tuple[OptionGroup, ...]:
    """What the picker offers ``identity`` for the typed ``text``: bundles first, then resources, by integration."""
    index = _index(policy.catalog, policy.config)
    flows = policy.usable_flows(identity, now)
    needle = text.strip().lower()
    groups: dict[str, list[PickerOption]] = {}
    count = 0
    for option_id, (name, keys, permissions) in index.bundles.items():
        if count >= MAX_OPTIONS or (needle and needle not in name.lower()):
            continue
        resources = [policy.catalog.resources[k] for k in keys]
        offered = common_permissions(flows, policy.catalog, resources) if resources else []
        if not any(p.name in permissions for p in offered):  # some flow offers the bundle's own access
            continue
        integrations = {r.integration for r in resources}
        group = next(iter(integrations)) if len(integrations) == 1 else "Bundles"
        groups.setdefault(group, []).append(PickerOption(option_id, bundle_label(name, len(resources))))
        count += 1
    for resource in policy.requestable_resources(identity, now, text, limit=MAX_OPTIONS - count):
        groups.setdefault(resource.integration, []).append(
            PickerOption(resource_option_id(resource.key), resource_label(resource)))
    return tuple(OptionGroup(label, tuple(found)) for label, found in groups.items())


def selected_options(policy: CompiledPolicy, keys: Sequence[str]) -> tuple[PickerOption, ...]:
    """The picker's options for resources already chosen (to keep them selected when the modal is redrawn)."""
    chosen = [policy.catalog.resources[k] for k in keys if k in policy.catalog.resources]
    return tuple(PickerOption(resource_option_id(r.key), resource_label(r)) for r in chosen)


def configured_risk(config: Config, resources: Sequence[Resource], permission: Permission | None) -> str | None:
    """The highest risk level an admin wrote for these resources or this permission; None when none was
    written (then no risk is shown: a default of "medium" would claim something nobody said)."""
    levels: list[str] = []
    integrations = {i.name: i for i in config.integrations}
    for resource in resources:
        integration = integrations.get(resource.integration)
        if integration is None:
            continue
        written = {(d.type, d.name): d.risk_level for d in integration.resources if d.risk_level}
        if (resource.type, resource.name) in written or "risk_level" in integration.model_fields_set:
            levels.append(resource.risk)
    if permission is not None:
        integration = integrations.get(permission.integration)
        spec = integration.permissions.get(permission.name) if integration else None
        if (spec is not None and spec.risk_level) or (integration and "risk_level" in integration.model_fields_set):
            levels.append(permission.risk)
    return max(levels, key=RISK_ORDER.__getitem__) if levels else None
