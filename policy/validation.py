"""Loading ``accessbot.yml``: YAML → models → cross-references, every problem with its YAML path and line."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

from policy.config import (
    BundleTarget,
    Config,
    ConditionSet,
    Flow,
    IntegrationBase,
    IntegrationTarget,
    ScopeTarget,
)
from policy.query import QueryError, parse_query

Loc = tuple[str | int, ...]
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    path: str
    message: str
    line: int | None = None
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{self.severity}: {where}{self.path or '(top level)'}: {self.message}"


class ConfigError(Exception):
    """The configuration does not validate; ``problems`` lists every error."""

    def __init__(self, problems: list[ConfigProblem], source: str = "") -> None:
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source or 'config'} is not valid ({len(problems)} problem(s)):\n{lines}")


def format_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_config_text(text: str, source: str = "accessbot.yml") -> Config:
    """Parse and validate a config; raises :class:`ConfigError` naming every problem's path and line."""
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigProblem("", f"not valid YAML: {problem}", line)], source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem("", "the file must be a mapping of keys (admins, flows, ...)", 1)], source)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = [_problem_from_error(err, data, node) for err in exc.errors()]
        raise ConfigError(problems, source) from None
    errors = [p for p in reference_problems(config) if p.severity == "error"]
    if errors:
        raise ConfigError([_with_line(p, node) for p in errors], source)
    return config


def load_config_file(path: str) -> Config:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError([ConfigProblem("", f"cannot read {path}: {exc.strerror}")], path) from None
    return load_config_text(text, path)


# --- pydantic errors → readable problems ---------------------------------------------------------------------


def _problem_from_error(err: Any, data: Any, node: yaml.Node | None) -> ConfigProblem:
    loc = _data_loc(tuple(err["loc"]), data)
    message = str(err["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1], data)
        key = str(loc[-1])
        hint = difflib.get_close_matches(key, allowed, n=1)
        message = f"unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        if allowed:
            message += f"; allowed keys: {', '.join(allowed)}"
    elif err["type"] == "missing":
        message = "required key is missing"
    return ConfigProblem(format_path(loc), message, _line_of(node, loc))


def _data_loc(loc: Loc, data: Any) -> Loc:
    """Drop union tags and validator names that pydantic puts in ``loc`` but that are not in the YAML."""
    out: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(current, dict) and part in current:
            out.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            out.append(part)
            current = current[part]
        elif last and isinstance(current, dict) and isinstance(part, str) and not part.startswith(
            ("function-", "literal[")
        ) and part[:1].islower():
            out.append(part)
    return tuple(out)


def _allowed_keys(loc: Loc, data: Any) -> list[str]:
    model: Any = Config
    current = data
    for part in loc:
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            current = current[part]
        else:
            current = None
        model = _child_type(model, part, current)
        if model is None:
            return []
    model = _pick_model(model, current)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or name for name, f in model.model_fields.items()]
    return []


def _child_type(model: Any, part: str | int, value: Any) -> Any:
    model = _pick_model(model, value)
    if isinstance(model, type) and issubclass(model, BaseModel):
        for name, field in model.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    origin = typing.get_origin(model)
    args = typing.get_args(model)
    if origin is list and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _pick_model(annotation: Any, value: Any) -> Any:
    """Resolve Annotated/Union annotations to the model the value was meant to be."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        candidates = [_pick_model(a, value) for a in typing.get_args(annotation)]
        models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if isinstance(value, dict):
            for candidate in models:
                type_field = candidate.model_fields.get("type")
                if type_field is not None and value.get("type") in typing.get_args(type_field.annotation):
                    return candidate
            for candidate in models:
                keys = {f.alias or n for n, f in candidate.model_fields.items() if f.is_required()}
                if keys and keys <= set(value):
                    return candidate
        return models[0] if models else None
    return annotation


def _line_of(node: yaml.Node | None, loc: Loc) -> int | None:
    current = node
    best = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(current, yaml.MappingNode):
            match = next((v for k, v in current.value if getattr(k, "value", None) == part), None)
            key = next((k for k, _ in current.value if getattr(k, "value", None) == part), None)
            if match is None:
                return best
            best = (key or match).start_mark.line + 1
            current = match
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int) and part < len(current.value):
            current = current.value[part]
            best = current.start_mark.line + 1
        else:
            return best
    return best


def _with_line(problem: ConfigProblem, node: yaml.Node | None) -> ConfigProblem:
    loc: list[str | int] = []
    for piece in problem.path.replace("]", "").replace("[", ".").split("."):
        if piece:
            loc.append(int(piece) if piece.isdigit() else piece)
    return ConfigProblem(problem.path, problem.message, _line_of(node, tuple(loc)), problem.severity)


# --- cross-references -----------------------------------------------------------------------------------------


def reference_problems(config: Config) -> list[ConfigProblem]:
    """Problems that span several parts of the file: names that must exist, be unique, parse, or be usable."""
    problems: list[ConfigProblem] = []
    problems += _duplicates("integrations", [i.name for i in config.integrations])
    problems += _duplicates("bundles", [b.name for b in config.bundles])
    problems += _duplicates("access_scopes", [s.name for s in config.access_scopes])
    problems += _duplicates("flows", [f.name for f in config.flows])
    problems += _duplicates("spaces", [s.name for s in config.spaces])
    integrations = {i.name: i for i in config.integrations}
    for b_index, bundle in enumerate(config.bundles):
        for t_index, bundle_target in enumerate(bundle.targets):
            problems += _integration_target(f"bundles[{b_index}].targets[{t_index}]", bundle_target, integrations)
    for s_index, scope in enumerate(config.access_scopes):
        problems += _query(f"access_scopes[{s_index}].query", scope.query)
    bundles = {b.name for b in config.bundles}
    scopes = {s.name for s in config.access_scopes}
    spaces = {s.name for s in config.spaces}
    all_permissions = {p for i in config.integrations for p in i.permissions}
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
                    problems.append(_unknown(f"{path}.access_scope", "access scope", target.access_scope, scopes))
                for p_index, permission in enumerate(target.permissions or []):
                    if permission not in all_permissions:
                        problems.append(
                            _unknown(f"{path}.permissions[{p_index}]", "permission", permission, all_permissions)
                        )
        if "others" not in flow.request_for and flow.grantees is not None:
            problems.append(
                ConfigProblem(f"{base}.grantees", "grantees apply only when request_for includes `others`")
            )
        problems += _approvability(base, flow, config)
    return problems


def _duplicates(section: str, names: list[str]) -> Iterator[ConfigProblem]:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            yield ConfigProblem(f"{section}[{index}].name", f"{name!r} is defined twice; names must be unique")
        seen.add(name)


def _unknown(path: str, what: str, name: str, known: set[str]) -> ConfigProblem:
    hint = difflib.get_close_matches(name, sorted(known), n=1)
    allowed = f"; defined: {', '.join(sorted(known))}" if known else f"; no {what} is defined"
    return ConfigProblem(path, f"unknown {what} {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "") + allowed)


def _query(path: str, text: str) -> list[ConfigProblem]:
    try:
        parse_query(text)
    except QueryError as exc:
        return [ConfigProblem(path, f"bad query: {exc}")]
    return []


def _integration_target(
    path: str, target: IntegrationTarget, integrations: Mapping[str, IntegrationBase]
) -> list[ConfigProblem]:
    integration = integrations.get(target.integration)
    if integration is None:
        return [_unknown(f"{path}.integration", "integration", target.integration, set(integrations))]
    problems: list[ConfigProblem] = []
    for index, permission in enumerate(target.permissions):
        if permission not in integration.permissions:
            problems.append(
                _unknown(f"{path}.permissions[{index}]", "permission", permission, set(integration.permissions))
            )
    discovers = bool(getattr(integration, "discover", False))
    types_known = {r.type for r in integration.resources}
    if target.resource_type and not discovers and target.resource_type not in types_known:
        problems.append(_unknown(f"{path}.resource_type", "resource type", target.resource_type, types_known))
    names_known = {r.name for r in integration.resources}
    selector = target.resources
    if selector.names and not discovers:
        for index, name in enumerate(selector.names):
            if name not in names_known:
                problems.append(_unknown(f"{path}.resources.names[{index}]", "resource", name, names_known))
    if selector.query:
        problems += _query(f"{path}.resources.query", selector.query)
    return problems


def _approvability(base: str, flow: Flow, config: Config) -> list[ConfigProblem]:
    """Warn about approver groups that no user of the directory can ever satisfy."""
    approval = flow.approval
    if approval.type != "approvers":
        return []
    from policy.conditions import matches
    from policy.directory import DirectoryIndex

    index = DirectoryIndex(config.directory)
    everyone_oncall = frozenset(s.schedule for s in config.directory.oncall)
    owners = {i.name: {o.lower() for o in i.owners} for i in config.integrations}
    candidates = []
    for user in config.directory.users:
        identity = index.build_identity(slack_id=user.slack_id, email=user.email, now=_EPOCH)
        owned = frozenset(name for name, emails in owners.items() if user.email.lower() in emails)
        candidates.append(_replace_identity(identity, everyone_oncall, owned))
    slack_side = config.directory.slack_usergroups or any(_mentions_slack_side(g) for g in approval.groups)
    if slack_side:
        return []
    all_integrations = frozenset(owners)

    def satisfiable(group: ConditionSet) -> bool:
        return any(matches(group, c, owned_integrations=all_integrations) for c in candidates)

    groups = approval.groups
    failing = [i for i, g in enumerate(groups) if not satisfiable(g)]
    if (approval.combine == "any_of" and len(failing) == len(groups)) or (
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


def _mentions_slack_side(group: ConditionSet) -> bool:
    """Conditions on Slack ids or arbitrary attributes may match users the directory does not list."""
    return any(
        c.attribute not in {"group", "manager", "oncall", "owner"}
        and not (c.attribute == "user" and all("@" in v for v in c.values))
        for c in group.conditions
    )


def _replace_identity(identity: Any, oncall: frozenset[str], owned: frozenset[str]) -> Any:
    return dataclasses.replace(identity, oncall=oncall, owner_of=owned)


def warnings(config: Config) -> list[ConfigProblem]:
    return [p for p in reference_problems(config) if p.severity == "warning"]

