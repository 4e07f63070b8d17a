"""Loading ``accessbot.yml``: YAML → models → cross-references, every problem with its YAML path and line."""

from __future__ import annotations

import difflib
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from policy.approvability import Approvability
from policy.config import (
    BundleTarget,
    Config,
    DirectoryUser,
    Flow,
    Integration,
    IntegrationBase,
    IntegrationTarget,
    ScopeTarget,
)
from policy.problems import (
    ConfigError,
    ConfigProblem,
    format_path,
    problems_from_validation_error,
    with_line,
)
from policy.query import QueryError, parse_query
from policy.yaml_parts import ListPath, NotCertain, cut
from policy.yaml_source import compose_yaml, load_yaml

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "collector_paused",
    "format_path",
    "load_config_file",
    "load_config_text",
    "reference_problems",
    "warnings",
]

@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a config is built, then back as it was.

    A large config is millions of new objects, none of them garbage; every collection the allocations trigger
    walks all of them, which made up two thirds of the load (the 100,000-resource config: 3.4 s of CPU with the
    collector, 1.5 s without). Reference counting still frees everything at once. The caller that keeps the
    result collects and freezes once afterwards (``bot.lifecycle.policy_holder.settle_memory``).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_config_text(text: str, source: str = "accessbot.yml") -> Config:
    """Parse and validate a config; raises :class:`ConfigError` naming every problem's path and line."""
    with collector_paused():
        return _load_config_text(text, source)


def _load_config_text(text: str, source: str) -> Config:
    config = _validate_in_parts(text)
    if config is None:
        config = _validate_whole(text, source)
    errors = [p for p in reference_problems(config, with_warnings=False) if p.severity == "error"]
    if errors:
        node = compose_yaml(text)
        raise ConfigError([with_line(p, node) for p in errors], source)
    return config


_LONG_LISTS = {"integrations": True, "flows": True, "directory": {"users": True}}
"""The lists a large config is long in, validated item by item (:mod:`policy.yaml_parts`)."""


@cache
def _item_adapter(path: ListPath) -> TypeAdapter[Any]:
    item = {("integrations",): Integration, ("flows",): Flow, ("directory", "users"): DirectoryUser}[path]
    return TypeAdapter(item)


def _validate_in_parts(text: str) -> Config | None:
    """The config read in parts: each item of the long lists parsed and validated alone, then the rest.

    Only one item's parsed data is alive at a time (:mod:`policy.yaml_parts`). None when the file cannot be
    cut with certainty, or when anything in it does not validate: then it is read whole, and its problems are
    reported as always (the same data is validated the same way either way; only the errors need the whole).
    """
    parts = cut(text, _LONG_LISTS)
    if parts is None:
        return None
    try:
        data = parts.rest()
        for path in parts.lists:
            adapter = _item_adapter(path)
            validated = [adapter.validate_python(item) for item in parts.items(path)]
            parent = data
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = validated
        return Config.model_validate(data)
    except (NotCertain, ValidationError):
        return None


def _validate_whole(text: str, source: str) -> Config:
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigProblem("", f"not valid YAML: {problem}", line)], source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [ConfigProblem("", "the file must be a mapping of keys (admins, flows, ...)", 1)], source
        )
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_from_validation_error(exc, data, compose_yaml(text)), source) from None


def load_config_file(path: str) -> Config:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError([ConfigProblem("", f"cannot read {path}: {exc.strerror}")], path) from None
    return load_config_text(text, path)


# --- cross-references ---------------------------------------------------------------------------------------


def reference_problems(config: Config, *, with_warnings: bool = True) -> list[ConfigProblem]:
    """Problems that span several parts of the file: names that must exist, be unique, parse, or be usable.

    ``with_warnings=False``: only the errors, without the approvability check (whether anybody in the directory
    can approve each flow), which only ever warns; loading a config needs the errors alone.
    """
    problems: list[ConfigProblem] = []
    problems += _duplicates("integrations", [i.name for i in config.integrations])
    problems += _duplicates("bundles", [b.name for b in config.bundles])
    problems += _duplicates("access_scopes", [s.name for s in config.access_scopes])
    problems += _duplicates("flows", [f.name for f in config.flows])
    problems += _duplicates("spaces", [s.name for s in config.spaces])
    integrations = _KnownIntegrations(config)
    for b_index, bundle in enumerate(config.bundles):
        for t_index, bundle_target in enumerate(bundle.targets):
            problems += _integration_target(
                f"bundles[{b_index}].targets[{t_index}]", bundle_target, integrations
            )
    for s_index, scope in enumerate(config.access_scopes):
        problems += _query(f"access_scopes[{s_index}].query", scope.query)
    bundles = {b.name for b in config.bundles}
    scopes = {s.name for s in config.access_scopes}
    spaces = {s.name for s in config.spaces}
    all_permissions = {p for i in config.integrations for p in i.permissions}
    approvability = Approvability(config) if with_warnings else None
    for f_index, flow in enumerate(config.flows):
        base = f"flows[{f_index}]"
        if flow.space is not None and flow.space not in spaces:
            problems.append(_unknown(f"{base}.space", "space", flow.space, spaces))
        for t_index, target in enumerate(flow.targets):
            path = f"{base}.targets[{t_index}]"
            if isinstance(target, IntegrationTarget):
                problems += _integration_target(path, target, integrations)
            elif isinstance(target, BundleTarget) and target.bundle not in bundles:
                problems.append(_unknown(f"{path}.bundle", "bundle", target.bundle, bundles))
            elif isinstance(target, ScopeTarget):
                if target.access_scope not in scopes:
                    problems.append(
                        _unknown(f"{path}.access_scope", "access scope", target.access_scope, scopes)
                    )
                for p_index, permission in enumerate(target.permissions or []):
                    if permission not in all_permissions:
                        problems.append(
                            _unknown(
                                f"{path}.permissions[{p_index}]", "permission", permission, all_permissions
                            )
                        )
        if "others" not in flow.request_for and flow.grantees is not None:
            problems.append(
                ConfigProblem(f"{base}.grantees", "grantees apply only when request_for includes `others`")
            )
        if approvability is not None:
            problems += _approvability(base, flow, approvability)
    return problems


def _duplicates(section: str, names: list[str]) -> Iterator[ConfigProblem]:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            yield ConfigProblem(
                f"{section}[{index}].name", f"{name!r} is defined twice; names must be unique"
            )
        seen.add(name)


def _unknown(path: str, what: str, name: str, known: set[str]) -> ConfigProblem:
    hint = difflib.get_close_matches(name, sorted(known), n=1)
    allowed = f"; defined: {', '.join(sorted(known))}" if known else f"; no {what} is defined"
    return ConfigProblem(
        path, f"unknown {what} {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "") + allowed
    )


def _query(path: str, text: str) -> list[ConfigProblem]:
    try:
        parse_query(text)
    except QueryError as exc:
        return [ConfigProblem(path, f"bad query: {exc}")]
    return []


class _KnownIntegrations:
    """The integrations by name, with each one's resource types and names collected once per check."""

    def __init__(self, config: Config) -> None:
        self.by_name: dict[str, IntegrationBase] = {i.name: i for i in config.integrations}
        self._known: dict[str, tuple[set[str], set[str]]] = {}

    def types_and_names(self, integration: IntegrationBase) -> tuple[set[str], set[str]]:
        known = self._known.get(integration.name)
        if known is None:
            resources = integration.resources
            known = self._known[integration.name] = ({r.type for r in resources}, {r.name for r in resources})
        return known


def _integration_target(
    path: str, target: IntegrationTarget, integrations: _KnownIntegrations
) -> list[ConfigProblem]:
    integration = integrations.by_name.get(target.integration)
    if integration is None:
        known = set(integrations.by_name)
        return [_unknown(f"{path}.integration", "integration", target.integration, known)]
    problems: list[ConfigProblem] = []
    for index, permission in enumerate(target.permissions):
        if permission not in integration.permissions:
            problems.append(
                _unknown(
                    f"{path}.permissions[{index}]", "permission", permission, set(integration.permissions)
                )
            )
    discovers = bool(getattr(integration, "discover", False))
    types_known, names_known = integrations.types_and_names(integration)
    if target.resource_type and not discovers and target.resource_type not in types_known:
        problems.append(_unknown(f"{path}.resource_type", "resource type", target.resource_type, types_known))
    selector = target.resources
    if selector.names and not discovers:
        for index, name in enumerate(selector.names):
            if name not in names_known:
                problems.append(_unknown(f"{path}.resources.names[{index}]", "resource", name, names_known))
    if selector.query:
        problems += _query(f"{path}.resources.query", selector.query)
    return problems


def _approvability(base: str, flow: Flow, approvability: Approvability) -> list[ConfigProblem]:
    """Warn about a flow whose approver groups no user of the directory can ever satisfy."""
    approval = flow.approval
    failing = approvability.failing_groups(approval)
    if (approval.combine == "any_of" and failing and len(failing) == len(approval.groups)) or (
        approval.combine == "all_of" and failing
    ):
        where = ", ".join(f"groups[{i}]" for i in failing)
        return [
            ConfigProblem(
                f"{base}.approval",
                f"flow {flow.name!r} can never be approved: no user in the directory matches {where}",
                severity="warning",
            )
        ]
    return []


def warnings(config: Config) -> list[ConfigProblem]:
    return [p for p in reference_problems(config) if p.severity == "warning"]
