"""Config problems and how pydantic's errors become them: the YAML path (``flows[0].extend.max_times``), what
is wrong and what is allowed, and the line in the file."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

from policy.config import Config

Loc = tuple[str | int, ...]


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


def problems_from_validation_error(
    exc: ValidationError, data: Any, node: yaml.Node | None
) -> list[ConfigProblem]:
    """One problem per pydantic error, each at the YAML path and line the user wrote."""
    details = exc.errors()
    return [_problem_from_error(err, data, node) for err in details if not _other_branch(err, details, data)]


def _branch_at(loc: Loc) -> int | None:
    """Where in ``loc`` a union member's tag is (``literal['always']``, ``function-after[...]``, a class)."""
    for index, part in enumerate(loc):
        if isinstance(part, str) and (part.startswith(("literal[", "function-")) or part[:1].isupper()):
            return index
    return None


def _other_branch(err: Any, errors: list[Any], data: Any) -> bool:
    """Whether ``err`` comes from a union member the value was plainly not meant to be.

    ``when: {from: ..., to: ...}`` was meant as a window, not as ``always``; ``when: sometimes`` was meant as
    a word, not as a window. Reporting both members' complaints would only confuse.
    """
    loc = tuple(err["loc"])
    at = _branch_at(loc)
    if at is None:
        return False
    union = loc[:at]
    siblings = [
        e
        for e in errors
        if e is not err and _branch_at(tuple(e["loc"])) == at and tuple(e["loc"])[:at] == union
    ]
    if not siblings:
        return False
    value = _value_at(data, union)
    if isinstance(value, dict):
        return str(loc[at]).startswith("literal[")
    return err["type"] in {"model_type", "model_attributes_type", "dict_type", "dataclass_type", "dataclass_args_type"}


def _value_at(data: Any, loc: Loc) -> Any:
    current = data
    for part in loc:
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
        else:
            return None
    return current


def _problem_from_error(err: Any, data: Any, node: yaml.Node | None) -> ConfigProblem:
    loc = _data_loc(tuple(err["loc"]), data)
    message = str(err["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    ctx = err.get("ctx") or {}
    if err["type"] == "config_rule" and ctx.get("at"):
        loc = (*loc, *(int(p) if p.isdigit() else p for p in str(ctx["at"]).split(".") if p))
    elif err["type"] == "union_tag_invalid":
        key = str(ctx.get("discriminator", "type")).strip("'")
        loc = (*loc, key)
        expected = str(ctx.get("expected_tags", "")).replace("'", "")
        message = f"unknown {key} {ctx.get('tag')!r}; allowed: {expected}"
    elif err["type"] in _UNKNOWN_KEY:
        allowed = _allowed_keys(loc[:-1], data)
        key = str(loc[-1])
        hint = difflib.get_close_matches(key, allowed, n=1)
        message = f"unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        if allowed:
            message += f"; allowed keys: {', '.join(allowed)}"
    elif err["type"] == "missing":
        message = "required key is missing"
    else:
        message = _written_and_allowed(err, loc, message)
    return ConfigProblem(format_path(loc), message, _line_of(node, loc))


_UNKNOWN_KEY = {"extra_forbidden", "unexpected_keyword_argument"}  # a model's word for it, and a dataclass's

_ALLOWED_BY_TYPE = {
    "bool_parsing": "true, false",
    "bool_type": "true, false",
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "string_type": "text",
    "list_type": "a list ([a, b] or one `- item` per line)",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "dataclass_type": "a mapping (key: value)",
    "dataclass_args_type": "a mapping (key: value)",
}


def _written(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…'"


def _written_and_allowed(err: Any, loc: Loc, message: str) -> str:
    """``op: 'equalz' — allowed: is, is_not, …``: what was written, then what may be written instead."""
    kind = err["type"]
    if "input" not in err or kind in {"config_rule", "union_tag_invalid", *_UNKNOWN_KEY}:
        return message
    written = _written(err["input"])
    ctx = err.get("ctx") or {}
    if kind == "literal_error":
        allowed = [a.strip().strip("'") for a in str(ctx.get("expected", "")).replace(" or ", ", ").split(",")]
        allowed = [a for a in allowed if a]
        hint = difflib.get_close_matches(str(err["input"]), allowed, n=1)
        if loc and loc[-1] == "when":
            allowed.append("or a window {days, from, to, timezone}")
        return f"{written}" + (f" (did you mean {hint[0]!r}?)" if hint else "") + f" — allowed: {', '.join(allowed)}"
    if kind in _ALLOWED_BY_TYPE:
        return f"{written} — allowed: {_ALLOWED_BY_TYPE[kind]}"
    if written in message:  # the message quotes it already ("a duration must be positive, got '-1h'")
        return message
    if message.startswith("Input should be "):  # "less than or equal to 10", "a valid date or date-time", …
        return f"{written} — allowed: {message[len('Input should be '):]}"
    return f"{written}: {message}"


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
        elif (
            last
            and isinstance(current, dict)
            and isinstance(part, str)
            and not part.startswith(("function-", "literal["))
            and part[:1].islower()
        ):
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
    fields = _fields(_pick_model(model, current))
    return [key for key, _, _ in fields] if fields is not None else []


def _fields(model: Any) -> list[tuple[str, Any, bool]] | None:
    """(key in the file, annotation, required) of each field of a model or a validated dataclass; None for others."""
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [(f.alias or name, f.annotation, f.is_required()) for name, f in model.model_fields.items()]
    if isinstance(model, type) and dataclasses.is_dataclass(model):
        hints = typing.get_type_hints(model, include_extras=True)
        return [
            (f.name, hints[f.name], f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(model)
        ]
    return None


def _child_type(model: Any, part: str | int, value: Any) -> Any:
    model = _pick_model(model, value)
    fields = _fields(model)
    if fields is not None:
        return next((annotation for key, annotation, _ in fields if part == key), None)
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


def with_line(problem: ConfigProblem, node: yaml.Node | None) -> ConfigProblem:
    loc: list[str | int] = []
    for piece in problem.path.replace("]", "").replace("[", ".").split("."):
        if piece:
            loc.append(int(piece) if piece.isdigit() else piece)
    return ConfigProblem(problem.path, problem.message, _line_of(node, tuple(loc)), problem.severity)
