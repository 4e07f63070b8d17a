"""A large ``accessbot.yml`` read in parts: each item of its long lists parsed (and then validated) on its own.

The parser's data for a 13 MB file is ~200 MB of small Python objects. Built at once, it is the peak of the load,
and its memory stays with the process after it is freed: the few strings the config keeps (resource names,
emails) are scattered over all of it, and the allocator can hand back only what is entirely free. Read in parts,
only one item's data is alive at a time, and the next item reuses what the last one left.

:func:`cut` finds the items of the lists named by ``paths`` (``integrations``, ``flows``, ``directory.users``)
from the layout of the text alone, and only when that layout leaves no doubt about where each item starts and
ends: block mappings whose keys are plain words, block sequences whose items start with ``-`` at one
indentation, nothing but blank lines and comments anywhere else, no anchors or aliases (which may reach from one
item into another), every key once. Then every line of the file is either in the rest (parsed as one document)
or in exactly one item, and an item parsed alone is the same data as in its place. When in doubt, :func:`cut`
answers None and the file is read whole, as before.

Each part is parsed by :func:`policy.yaml_source.parse_fast`'s rules (the fast parser, only where its data is
certainly PyYAML's); a part it cannot vouch for raises :class:`NotCertain`, and the caller reads the whole file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from policy import yaml_source
from policy.yaml_source import PlainData

__all__ = ["NotCertain", "Parts", "cut"]

ListPath = tuple[str, ...]
"""Where a list is: ``("flows",)``, ``("directory", "users")``."""

_KEY_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):(?:[ \t]+(#.*)?)?\r?$")  # a plain key and no value on its line
_ENTRY_LINE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*:(?:[ \t]|\r?$)")  # a plain key, any value
_ITEM_LINE = re.compile(r"-(?:[ ]|\r?$)")
_DOCUMENT_START = re.compile(r"---[ \t]*(?:#.*)?\r?$")
_SHALLOW: dict[int, re.Pattern[str]] = {}


class NotCertain(Exception):
    """A part the fast parser cannot vouch for: read the whole file instead."""


@dataclass(frozen=True)
class _Span:
    start: int
    end: int


class Parts:
    """The rest of the file, parsed, and the items of each cut list, parsed one at a time when asked for."""

    def __init__(self, text: str, rest: str, items: dict[ListPath, list[_Span]], plain: PlainData) -> None:
        self._text = text
        self._rest = rest
        self._items = items
        self._plain = plain

    @property
    def lists(self) -> list[ListPath]:
        return list(self._items)

    def rest(self) -> dict[str, Any]:
        """The data of everything but the cut lists (each list's parent mapping is there, without the list)."""
        data = self._parse(self._rest)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise NotCertain("the file is not a mapping")
        for path in self._items:
            parent = data
            for key in path[:-1]:
                child = parent.get(key)
                if child is None:  # the cut list was all there was under ``key``
                    child = parent[key] = {}
                if not isinstance(child, dict):
                    raise NotCertain(f"{key} is not a mapping")
                parent = child
            if path[-1] in parent:
                raise NotCertain(f"{'.'.join(path)} is written twice")
        return data

    def items(self, path: ListPath) -> Iterator[Any]:
        """The data of each item of the list at ``path``, in order; only the one being looked at is alive."""
        for span in self._items[path]:
            parsed = self._parse(self._text[span.start : span.end])
            if not isinstance(parsed, list) or len(parsed) != 1:
                raise NotCertain(f"an item of {'.'.join(path)} is not one item")
            yield parsed.pop()

    def _parse(self, text: str) -> Any:
        taken, data = yaml_source.parse_part(text, self._plain)
        if not taken:
            raise NotCertain("the fast parser cannot vouch for a part")
        return data


def cut(text: str, paths: Mapping[str, Any]) -> Parts | None:
    """The text cut at the items of the lists named by ``paths`` (``{"flows": True, "directory": {"users":
    True}}``); None when the layout leaves any doubt, or when nothing was cut."""
    plain = yaml_source.certain_text(text)
    if plain is None or _has_anchors(text):
        return None
    spans: dict[ListPath, list[_Span]] = {}
    removed: list[_Span] = []
    if not _cut_mapping(text, 0, len(text), 0, paths, (), spans, removed, top=True):
        return None
    if not spans:
        return None
    rest, at = [], 0
    for span in sorted(removed, key=lambda s: s.start):
        rest.append(text[at : span.start])
        at = span.end
    rest.append(text[at:])
    return Parts(text, "".join(rest), spans, plain)


def _has_anchors(text: str) -> bool:
    """An anchor (``&a``) or an alias (``*a``) where a value starts (in doubt: yes)."""
    framed = "\n" + text
    for mark in ("&", "*"):
        at = framed.find(mark)
        while at != -1:
            if yaml_source.at_value_start(framed, at):
                return True
            at = framed.find(mark, at + 1)
    return False


def _lines_at_most(text: str, start: int, end: int, indent: int) -> Iterator[tuple[int, int, str]]:
    """(position, indentation, line) of each line in [start, end) that is not blank, not a comment and not
    indented deeper than ``indent``."""
    pattern = _SHALLOW.get(indent)
    if pattern is None:  # a newline first: the search skips from one newline to the next
        pattern = _SHALLOW[indent] = re.compile(rf"\n {{0,{indent}}}[^ \r\n#]")
    if start == 0:
        text = "\n" + text  # the first line has no newline before it
        start, end, shift = 1, end + 1, 1
    else:
        shift = 0
    for match in pattern.finditer(text, start - 1, end):
        at = match.start() + 1
        line_end = text.find("\n", at, end)
        line = text[at : end if line_end == -1 else line_end]
        stripped = line.lstrip(" ")
        yield at - shift, len(line) - len(stripped), stripped


def _next_line(text: str, at: int, end: int) -> int:
    found = text.find("\n", at, end)
    return end if found == -1 else found + 1


def _only_blank_or_comments(text: str, start: int, end: int) -> bool:
    return all(not line.strip() or line.lstrip().startswith("#") for line in text[start:end].splitlines())


def _cut_mapping(
    text: str, start: int, end: int, indent: int, paths: Mapping[str, Any], where: ListPath,
    spans: dict[ListPath, list[_Span]], removed: list[_Span], *, top: bool = False,
) -> bool:
    """Cut the lists named by ``paths`` out of the block mapping at ``indent`` in [start, end); False if unsure."""
    entries: list[tuple[str, int]] = []  # (key, position of its line)
    first = True
    for at, depth, line in _lines_at_most(text, start, end, indent):
        if first and top and depth == 0 and _DOCUMENT_START.match(line):  # the one document's start
            start = _next_line(text, at, end)
            first = False
            continue
        first = False
        if depth != indent:
            return False  # shallower than the mapping (or a tab): not a layout to cut by
        if _ITEM_LINE.match(line):
            if not entries:
                return False  # a list, not a mapping
            continue  # an item of the entry's value, a list at the entry's own indentation
        if not _ENTRY_LINE.match(line):
            return False  # a quoted or complex key, a flow mapping: read the file whole
        entries.append((line.split(":", 1)[0], at))
    if not entries or not _only_blank_or_comments(text, start, entries[0][1]):
        return False
    keys = [key for key, _ in entries]
    if len(set(keys)) != len(keys):
        return False
    bounds = [at for _, at in entries[1:]] + [end]
    for (key, at), entry_end in zip(entries, bounds, strict=True):
        wanted = paths.get(key)
        if wanted is None:
            continue
        line_end = _next_line(text, at, entry_end)
        if not _KEY_LINE.match(text[at:line_end].lstrip(" ").rstrip("\n")):
            continue  # a value on the key's own line (a flow list, an anchor): it stays in the rest
        body = next(_lines_at_most(text, line_end, entry_end, 1 << 16), None)
        if body is None:
            continue  # nothing under the key
        body_at, body_indent, body_line = body
        if not _only_blank_or_comments(text, line_end, body_at):
            return False
        if isinstance(wanted, Mapping):
            if body_indent <= indent or _ITEM_LINE.match(body_line):
                continue  # not a mapping under the key: left as it is, in the rest
            if not _cut_mapping(text, line_end, entry_end, body_indent, wanted, (*where, key), spans, removed):
                return False
            continue
        if not _ITEM_LINE.match(body_line) or body_indent < indent:
            continue  # not a block list: it stays in the rest
        items = _items(text, body_at, entry_end, body_indent)
        if items is None:
            return False
        spans[(*where, key)] = items
        removed.append(_Span(at, entry_end))
    return True


def _items(text: str, start: int, end: int, indent: int) -> list[_Span] | None:
    """The items of the block sequence at ``indent`` starting at ``start``; None if a line does not fit one."""
    starts = []
    for at, depth, line in _lines_at_most(text, start, end, indent):
        if depth != indent or not _ITEM_LINE.match(line):
            return None
        starts.append(at)
    return [_Span(a, b) for a, b in zip(starts, [*starts[1:], end], strict=True)]
