"""The resource query language (SPEC §4): an AQL-like filter over (resource, permission) entitlements.

    resource_tag.env = prod and (resource_risk >= high or permission in ("admin", 'owner'))

Parsed once with a lark LALR grammar (contextual lexer) and compiled into closures, so matching costs a few
attribute loads and comparisons. Precedence is not > and > or. Keywords and field names are case-insensitive;
tag keys and text values are not, risk values are. A value is a quoted string (backslash escapes;
``\\n`` and ``\\t`` are newline and tab) or a bare word of letters, digits, ``_ - . /``; after an operator
even ``and`` is a value. Bad input raises :class:`QueryError` with the 1-based line and column of the
offending token.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from operator import attrgetter, ge, gt, le, lt
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:  # lark is imported when a query is first parsed: ~9 MB of RSS a config without queries never needs
    from lark import Lark, Token, Tree
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

from policy.resources import RISK_ORDER, Entitlement

Predicate = Callable[[Entitlement], bool]

_GRAMMAR = r"""
?start: disjunction
?disjunction: conjunction (_OR conjunction)*
?conjunction: negation (_AND negation)*
?negation: NOT negation -> negate
         | comparison
         | _LPAR disjunction _RPAR
comparison: FIELD operator (STRING | WORD)
          | FIELD list_operator value_list
operator: EQ | NE | LT | LE | GT | GE | CONTAINS | NOT CONTAINS | STARTS_WITH | ENDS_WITH
list_operator: IN | NOT IN
value_list: _LPAR _values _RPAR | _LSQB _values _RSQB
_values: (STRING | WORD) (_COMMA (STRING | WORD))* _COMMA?

_OR.2: /or\b/i
_AND.2: /and\b/i
NOT.2: /not\b/i
IN.2: /in\b/i
CONTAINS.2: /contains\b/i
STARTS_WITH.2: /starts_with\b/i
ENDS_WITH.2: /ends_with\b/i
EQ: "="
NE: "!="
LT: "<"
LE: "<="
GT: ">"
GE: ">="
_LPAR: "("
_RPAR: ")"
_LSQB: "["
_RSQB: "]"
_COMMA: ","
FIELD: /[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_\-.\/]*)?/
WORD: /[A-Za-z0-9_][A-Za-z0-9_\-.\/]*/
STRING: /"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'/
%ignore /\s+/
"""

_TEXT_FIELDS: dict[str, Callable[[Entitlement], str]] = {
    "integration": attrgetter("resource.integration"),
    "resource_type": attrgetter("resource.type"),
    "resource_name": attrgetter("resource.name"),
    "permission": attrgetter("permission.name"),
    "resource_path": attrgetter("resource.path"),
    "source_id": attrgetter("resource.source_id"),
}
_RISK_FIELDS: dict[str, Callable[[Entitlement], str]] = {
    "resource_risk": lambda e: e.resource.risk.lower(),
    "permission_risk": lambda e: e.permission.risk.lower(),
}
_TAG_FIELD = "resource_tag"
FIELD_NAMES: tuple[str, ...] = (*_TEXT_FIELDS, f"{_TAG_FIELD}.<key>", *_RISK_FIELDS)

_OPERATOR_TEXT = {"EQ": "=", "NE": "!=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">="}
_ORDERING: dict[str, Callable[[int, int], bool]] = {"<": lt, "<=": le, ">": gt, ">=": ge}
_TEXT_TESTS: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda actual, wanted: wanted in actual,
    "starts_with": str.startswith,
    "ends_with": str.endswith,
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}
_OPERATOR_LIST = "=, !=, in, not in, contains, not contains, starts_with, ends_with, <, <=, >, >= (risks)"


class QueryError(ValueError):
    """A query that does not parse or compile; ``str()`` shows the position and a caret excerpt."""

    def __init__(self, message: str, line: int, column: int, query: str) -> None:
        self.message, self.line, self.column, self.query = message, line, column, query
        source = query.split("\n")[line - 1].rstrip("\r") if query else ""
        pad = "".join(c if c == "\t" else " " for c in source[: column - 1])
        super().__init__(f"line {line}, column {column}: {message}\n  {source}\n  {pad}^")

    def __reduce__(self) -> tuple[type[QueryError], tuple[str, int, int, str]]:
        return type(self), (self.message, self.line, self.column, self.query)

    @classmethod
    def at(cls, token: Token, message: str, query: str) -> QueryError:
        return cls(message, token.line or 1, token.column or 1, query)


@dataclass(frozen=True, slots=True)
class Query:
    """A compiled query; build it with :func:`parse_query`. Equal when the text is equal."""

    text: str
    fields: frozenset[str]
    _predicate: Predicate = field(repr=False, compare=False, hash=False)

    def matches(self, entitlement: Entitlement) -> bool:
        return self._predicate(entitlement)

    def filter(self, entitlements: Iterable[Entitlement]) -> list[Entitlement]:
        predicate = self._predicate
        return [e for e in entitlements if predicate(e)]

    def __str__(self) -> str:
        return self.text


def parse_query(text: str) -> Query:
    """Parse and compile ``text``; raises :class:`QueryError` pointing at the offending token."""
    if not text.strip():
        raise QueryError('empty query: write a condition such as resource_name = "db"', 1, 1, text)
    tree = _parse_tree(text)
    fields: set[str] = set()
    predicate = _compile(tree, text, fields)
    return Query(text, frozenset(fields), predicate)


@cache
def _parser() -> Lark:
    from lark import Lark

    return Lark(_GRAMMAR, parser="lalr", lexer="contextual")


def _parse_tree(text: str) -> Tree[Token]:
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

    interactive = _parser().parse_interactive(text)
    seen: list[Token] = []
    try:
        for token in interactive.iter_parse():
            seen.append(token)
        tree: Tree[Token] = interactive.feed_eof(seen[-1] if seen else None)
        return tree
    except UnexpectedCharacters as e:
        raise _character_error(e, text, seen) from None
    except UnexpectedToken as e:
        raise _token_error(e, text, seen) from None


def _character_error(e: UnexpectedCharacters, text: str, seen: list[Token]) -> QueryError:
    char = str(e.char)
    if char in "\"'":
        message = f"unterminated string: add the closing {char} (strings end on the same line)"
    else:
        message = f"unexpected character {char!r}; {_expected(set(e.allowed), seen)}"
    return QueryError(message, e.line, e.column, text)


def _token_error(e: UnexpectedToken, text: str, seen: list[Token]) -> QueryError:
    token: Token = e.token
    before = [t for t in seen if t is not token]
    previous = before[-1] if before else None
    opened = _unclosed_bracket(before)
    if previous is not None and previous.type == "FIELD" and previous.value.lower() in ("and", "or"):
        message = f"{_expected({'FIELD'}, before[:-1])} (got {previous.value!r})"
        return QueryError.at(previous, message, text)
    if token.type == "$END":
        if opened is not None and set(e.expected) & {"_RPAR", "_RSQB"}:
            message = f"unbalanced parentheses: this {opened.value!r} is never closed"
            return QueryError.at(opened, message, text)
        line, column, got = token.end_line or 1, token.end_column or 1, "end of query"
    else:
        line, column = token.line or 1, token.column or 1
        got = f"string {token.value}" if token.type == "STRING" else repr(str(token.value))
        if token.type == "_RPAR" and opened is None:
            return QueryError("unbalanced parentheses: this ')' has no matching '('", line, column, text)
    message = f"{_expected(set(e.expected), before)} (got {got})"
    if previous is not None and previous.type == token.type == "EQ":
        message += "; compare with a single '='"
    return QueryError(message, line, column, text)


def _expected(expected: set[str], before: list[Token]) -> str:
    """Say what the parser wanted, given the terminals it would accept and the tokens read so far."""
    after = f" after {before[-1].value!r}" if before else ""
    opened = _unclosed_bracket(before)
    at = next((i for i, t in enumerate(before) if t is opened), 0)
    in_list = opened is not None and (opened.type == "_LSQB" or (at > 0 and before[at - 1].type == "IN"))
    if expected & {"STRING", "WORD"}:
        return f"expected a value{after}"
    if expected & {"_LPAR", "_LSQB"} and "FIELD" not in expected:
        return f'expected a list such as ("a", "b"){after}'
    if "FIELD" in expected:
        return f"expected a field name{after}" if after else "expected a field name, 'not' or '('"
    if "EQ" in expected:
        return f"expected an operator{after}: {_OPERATOR_LIST}"
    if "IN" in expected:
        return "expected 'in' or 'contains' after 'not'"
    if in_list and opened is not None:
        comma = "',' or " if "_COMMA" in expected else ""
        return f"expected {comma}{')' if opened.type == '_LPAR' else ']'!r} to end the list"
    ending = "')'" if opened is not None else "end of query"
    return f"expected 'and', 'or' or {ending}{after}"


def _unclosed_bracket(tokens: Sequence[Token]) -> Token | None:
    stack: list[Token] = []
    for token in tokens:
        if token.type in ("_LPAR", "_LSQB"):
            stack.append(token)
        elif token.type in ("_RPAR", "_RSQB") and stack:
            stack.pop()
    return stack[-1] if stack else None


def _compile(node: Tree[Token] | Token, text: str, fields: set[str]) -> Predicate:
    from lark import Tree

    assert isinstance(node, Tree)
    children = [c for c in node.children if isinstance(c, Tree)]
    match node.data:
        case "disjunction":
            return _join([_compile(c, text, fields) for c in children], every=False)
        case "conjunction":
            return _join([_compile(c, text, fields) for c in children], every=True)
        case "negate":
            return _negate(_compile(children[0], text, fields))
        case "comparison":
            return _comparison(node, text, fields)
    raise AssertionError(node.data)  # pragma: no cover - the grammar has no other rules


def _comparison(node: Tree[Token], text: str, fields: set[str]) -> Predicate:
    from lark import Token, Tree

    field_token, operator_node, value_node = node.children
    assert isinstance(field_token, Token) and isinstance(operator_node, Tree)
    op_tokens = [t for t in operator_node.children if isinstance(t, Token)]
    op = " ".join(_OPERATOR_TEXT.get(t.type, t.type.lower()) for t in op_tokens)
    value_tokens = value_node.children if isinstance(value_node, Tree) else [value_node]
    values = [(_decode(t), t) for t in value_tokens if isinstance(t, Token)]
    name, _, key = str(field_token.value).partition(".")
    name = name.lower()
    if name in _RISK_FIELDS:
        fields.add(name)
        if "." in field_token.value:
            raise QueryError.at(field_token, f"{name} has no sub-fields", text)
        if op.removeprefix("not ") in _TEXT_TESTS:
            message = f"{op!r} does not apply to risk levels; use =, !=, in, not in, <, <=, > or >="
            raise QueryError.at(op_tokens[0], message, text)
        return _risk_predicate(_RISK_FIELDS[name], op, [_risk_level(v, t, text) for v, t in values])
    if op in _ORDERING:
        message = f"{op!r} compares risk levels: use it on resource_risk or permission_risk"
        raise QueryError.at(op_tokens[0], message, text)
    if name == _TAG_FIELD:
        if not key:
            raise QueryError.at(field_token, "resource_tag needs a key, as in resource_tag.env", text)
        fields.add(f"{_TAG_FIELD}.{key}")
        return _text_predicate(lambda e: e.resource.tag(key), op, [v for v, _ in values], optional=True)
    if name in _TEXT_FIELDS and "." not in field_token.value:
        fields.add(name)
        return _text_predicate(_TEXT_FIELDS[name], op, [v for v, _ in values], optional=False)
    raise QueryError.at(field_token, _unknown_field(str(field_token.value)), text)


def _unknown_field(written: str) -> str:
    name, dot, key = written.partition(".")
    known = [*_TEXT_FIELDS, _TAG_FIELD, *_RISK_FIELDS]
    close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
    if dot and close and close[0] == _TAG_FIELD:
        return f"unknown field {written!r}; did you mean {_TAG_FIELD}.{key}?"
    if close and not dot:
        return f"unknown field {written!r}; did you mean {close[0]}?"
    return f"unknown field {written!r}; the fields are {', '.join(FIELD_NAMES)}"


def _decode(token: Token) -> str:
    if token.type != "STRING":
        return str(token.value)
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), token.value[1:-1])


def _risk_level(value: str, token: Token, text: str) -> str:
    level = value.lower()
    if level not in RISK_ORDER:
        close = difflib.get_close_matches(level, list(RISK_ORDER), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        message = f"unknown risk level {value!r}: use low, medium, high or critical{hint}"
        raise QueryError.at(token, message, text)
    return level


def _risk_predicate(get: Callable[[Entitlement], str], op: str, levels: list[str]) -> Predicate:
    if op in _ORDERING:
        rank, compare = RISK_ORDER[levels[0]], _ORDERING[op]
        allowed = frozenset(level for level, n in RISK_ORDER.items() if compare(n, rank))
        return lambda e: get(e) in allowed
    return _text_predicate(get, op, levels, optional=False)


def _text_predicate(
    get: Callable[[Entitlement], str | None], op: str, values: list[str], *, optional: bool
) -> Predicate:
    wanted = values[0]
    allowed = frozenset(values)
    if op == "=":
        return lambda e: get(e) == wanted
    if op == "!=":
        return lambda e: get(e) != wanted
    if op == "in":
        return lambda e: get(e) in allowed
    if op == "not in":
        return lambda e: get(e) not in allowed
    test = _TEXT_TESTS[op.removeprefix("not ")]
    if optional:  # a missing tag never contains, starts or ends with anything
        positive: Predicate = lambda e: (actual := get(e)) is not None and test(actual, wanted)  # noqa: E731
    else:
        text = cast(Callable[[Entitlement], str], get)
        positive = {
            "contains": lambda e: wanted in text(e),
            "starts_with": lambda e: text(e).startswith(wanted),
            "ends_with": lambda e: text(e).endswith(wanted),
        }[op.removeprefix("not ")]
    return _negate(positive) if op.startswith("not ") else positive


def _negate(predicate: Predicate) -> Predicate:
    return lambda e: not predicate(e)


def _join(predicates: list[Predicate], *, every: bool) -> Predicate:
    """``and`` (every) or ``or`` of the predicates; a flat loop beats deep nesting for long chains."""
    if len(predicates) == 2:
        left, right = predicates
        return (lambda e: left(e) and right(e)) if every else (lambda e: left(e) or right(e))
    chain = tuple(predicates)

    def all_match(e: Entitlement) -> bool:
        for predicate in chain:
            if not predicate(e):
                return False
        return True

    def any_match(e: Entitlement) -> bool:
        for predicate in chain:
            if predicate(e):
                return True
        return False

    return all_match if every else any_match
