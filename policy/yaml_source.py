"""Reading the YAML of ``accessbot.yml``: PyYAML's data (``yaml.safe_load``), parsed fast when it is safe to.

PyYAML reads YAML 1.1, and its loaders are slow on a large file (a 12 MB config: ~30 s with libyaml's
``CSafeLoader``, twice that in pure Python). ``yaml-rs`` parses the same file in well under a second, but reads
YAML 1.2: plain scalars such as ``yes``, ``017``, ``1:30``, ``1e3`` or ``2026-01-05`` mean different values
there. :func:`load_yaml` therefore takes the fast parser's data only when it can show that PyYAML would have
built exactly the same data, and otherwise (or without ``yaml-rs`` installed) parses with PyYAML:

- every string the fast parser produced is one PyYAML would also read as a string even if it was written
  plain (``on``, ``'1'``, ``2026-01-05`` fail this: they may have been plain, so PyYAML decides);
- every number-like plain token of the text (``017``, ``0o17``, ``1e3``, ``4h``) means the same in both;
- nothing YAML 1.2 parsers and PyYAML treat differently is in the text at all: tags (``!foo``), directives
  (``%YAML``), several documents, merge keys, complex keys.

Line numbers are only needed to report a problem: :func:`compose_yaml` builds PyYAML's node tree then.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import BaseResolver, Resolver

try:  # the fast parser is optional: without it every file is read by PyYAML
    import yaml_rs
except ImportError:  # pragma: no cover - exercised where yaml-rs is not installed
    yaml_rs = None  # type: ignore[assignment]

__all__ = ["at_value_start", "certain_text", "compose_yaml", "fast_parser_available", "load_yaml", "parse_fast",
           "parse_part"]

_STR_TAG = BaseResolver.DEFAULT_SCALAR_TAG
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# PyYAML's implicit resolvers by first character: the tags a plain scalar may resolve to other than str.
_IMPLICIT: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _STR_TAG]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}
_WILDCARD = _IMPLICIT.get(None, [])

# Plain tokens that may be numbers to either parser: ``017``, ``-1``, ``.5``, ``+.inf``, ``4h``, ``1:30`` (after
# a separator; the text is searched with a newline in front). A char class first keeps the search fast.
_NUMBER_LIKE = re.compile(r"[\s\[{,](?:[-+.][^\s,\[\]{}#]+|[0-9][^\s,\[\]{}#]*)")
_DOCUMENTS = re.compile(r"\n(?:---|\.\.\.)(?=\s|$)|\n%")  # another document, an explicit end, a directive
_VALUE_START = frozenset("\n:-?[{,")


def _different_syntax(text: str) -> bool:
    """What YAML 1.1 (PyYAML) and YAML 1.2 (yaml-rs) read differently, quoted or not (in doubt, PyYAML reads).

    A tag where a value starts (``!foo``, ``!!str``; not the ``!=`` of a query), a directive (``%YAML``), a
    second document or an explicit end, a complex key (``? [a, b]``).
    """
    framed = "\n" + text
    if text.startswith(("...", "%")) or _DOCUMENTS.search(framed, 1):  # a leading --- is one document
        return True
    for mark in ("!", "? ", "?\n", "?\t"):
        at = framed.find(mark)
        while at != -1:
            if at_value_start(framed, at):
                return True
            at = framed.find(mark, at + 1)
    return False


def at_value_start(text: str, at: int) -> bool:
    """Whether only blanks stand between ``at`` and the start of a line or an indicator before it."""
    before = at - 1
    while before >= 0 and text[before] in " \t":
        before -= 1
    return before < 0 or text[before] in _VALUE_START


def fast_parser_available() -> bool:
    return yaml_rs is not None


def load_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``: the same data, the same errors; fast on the happy path."""
    found, data = parse_fast(text)
    if found:
        return data
    return load_with_pyyaml(text)


def load_with_pyyaml(text: str) -> Any:
    """``yaml.safe_load`` with libyaml when available; a bad file is read again in pure Python for its error.

    libyaml words its errors differently; the pure-Python loader's messages and lines are the ones users see.
    """
    try:
        return yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        if _SafeLoader is yaml.SafeLoader:
            raise
    return yaml.safe_load(text)  # raises the error as PyYAML's own loader words it


def compose_yaml(text: str) -> yaml.Node | None:
    """PyYAML's node tree of ``text`` (for the line of each value); only used when there is a problem."""
    return yaml.compose(text, Loader=_SafeLoader)  # noqa: S506 - composing constructs nothing


def parse_fast(text: str) -> tuple[bool, Any]:
    """``(True, data)`` when the fast parser's data is certainly PyYAML's; ``(False, None)`` otherwise."""
    plain = certain_text(text)
    if plain is None:
        return False, None
    return parse_part(text, plain)


def certain_text(text: str) -> PlainData | None:
    """What the fast parser's data of ``text`` (or of a part of it) is checked with; None when the text has what
    the parsers read differently anyway (a tag, a directive, a number-like token they disagree on)."""
    if yaml_rs is None or _different_syntax(text):
        return None
    tokens = {token[1:].rstrip(":") for token in _NUMBER_LIKE.findall("\n" + text)}
    if not all(_same_plain_scalar(token) for token in tokens):
        return None
    return PlainData(text)


def parse_part(part: str, plain: PlainData) -> tuple[bool, Any]:
    """:func:`parse_fast` of ``part``, a part of the text ``plain`` was made for (:func:`certain_text`)."""
    try:
        data = yaml_rs.loads(part, parse_datetime=False)
    except Exception:  # noqa: BLE001 - any complaint of the fast parser: PyYAML decides (and reports)
        return False, None
    if not plain.holds(data):
        return False, None
    return True, data


_constructor = SafeConstructor()


def _fast_plain(token: str) -> Any:
    """What yaml-rs makes of ``token`` written as a plain scalar."""
    parsed: list[Any] = yaml_rs.loads(f"- {token}\n", parse_datetime=False)  # type: ignore[union-attr,assignment]
    return parsed[0]


def _same_plain_scalar(token: str) -> bool:
    """Whether ``token``, written as a plain scalar, means the same value to PyYAML and to yaml-rs."""
    if not token:
        return True
    try:
        theirs = _fast_plain(token)
        ours = _constructor.construct_object(yaml.ScalarNode(_pyyaml_tag(token), token), deep=True)
    except Exception:  # noqa: BLE001 - either refuses it: not provably the same
        return False
    if isinstance(ours, float) and isinstance(theirs, float) and math.isnan(ours) and math.isnan(theirs):
        return True
    return type(ours) is type(theirs) and ours == theirs


def _pyyaml_tag(value: str) -> str:
    """The tag PyYAML resolves ``value`` to when it is written plain."""
    for tag, regexp in _IMPLICIT.get(value[0] if value else "", []) + _WILDCARD:
        if regexp.match(value):
            return tag
    return _STR_TAG


class PlainData:
    """Whether every scalar of the fast parser's data is one PyYAML reads the same however it was written.

    A string PyYAML would read as something else when plain (``on``, ``1``, ``20:00``, ``2026-01-05``) is still
    safe when it was quoted, for a quoted scalar is a string to both: when yaml-rs too reads that text as
    something else when plain, or when the text never has it plain (outside quotes, between separators).
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._same: set[str] = set()  # strings known to be read the same by both parsers
        self._different: set[str] = set()  # and those that may not be (each costs a search of the text)

    def _string(self, value: str) -> bool:
        if value and (value[0] in _IMPLICIT or _WILDCARD):
            if value in self._different:
                return False
            if not (_pyyaml_tag(value) == _STR_TAG or self._quoted(value)):
                self._different.add(value)
                return False
        # never plain when empty (a plain empty scalar is null to both), or no resolver can take it
        self._same.add(value)
        return True

    def _quoted(self, value: str) -> bool:
        try:
            if not isinstance(_fast_plain(value), str):
                return True
        except Exception:  # noqa: BLE001
            return False
        words = [re.escape(w) for w in value.split()]
        plain = r"(?:^|(?<=[\s\[{,]))" + r"\s+".join(words) + r"(?=[\s,\]}:]|$)"
        return re.search(plain, self._text, re.M) is None

    def holds(self, data: Any) -> bool:
        """Whether every key and scalar of ``data`` (yaml-rs's plain dicts, lists and scalars) is one PyYAML reads
        the same. A 12 MB config has over a million strings, most of them repeated: a string seen once is
        remembered (:attr:`_same`), and a mapping's keys or a list are checked against those in one set
        operation before one by one."""
        same, string = self._same, self._string
        stack = [data]
        pop, push = stack.pop, stack.append
        plain = self._plain_values
        while stack:
            item = pop()
            kind = type(item)
            if kind is dict:
                if not same.issuperset(item):
                    for key in item:
                        if type(key) is str:
                            if key not in same and not string(key):
                                return False
                        elif not (key is None or type(key) is bool or type(key) is int):
                            return False  # a float key may be NaN, which duplicate checks cannot see
                if not plain(item.values(), push):
                    return False
            elif kind is list:
                try:
                    if same.issuperset(item):
                        continue
                except TypeError:  # a mapping or a list among the items: one by one
                    pass
                if not plain(item, push):
                    return False
            elif not plain((item,), push):
                return False
        return True

    def _plain_values(self, values: Iterable[Any], push: Callable[[Any], None]) -> bool:
        """Whether each value is a string read the same, or a null, boolean or number; mappings and lists among
        them are handed to ``push`` (to be looked at in turn)."""
        same, string = self._same, self._string
        for value in values:
            kind = type(value)
            if kind is str:
                if value not in same and not string(value):
                    return False
            elif kind is dict or kind is list:
                push(value)
            elif not (value is None or kind is bool or kind is int or kind is float):
                return False
        return True
