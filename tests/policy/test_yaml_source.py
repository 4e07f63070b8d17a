"""policy/yaml_source.py: the fast parser's data is taken only when it is exactly PyYAML's ``safe_load``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.datasets import SIZES, build
from policy import yaml_source
from policy.yaml_source import compose_yaml, load_yaml, parse_fast
from tests.policy.test_config import BAD_CONFIGS, MINIMAL, SPEC_EXAMPLE

ROOT = Path(__file__).resolve().parents[2]
needs_fast = pytest.mark.skipif(not yaml_source.fast_parser_available(), reason="yaml-rs is not installed")


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (``True == 1`` and ``1 == 1.0`` do not count)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return same(list(a.items()), list(b.items()))
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


SNIPPETS = [
    # (description, text) — YAML 1.1 and 1.2 disagree on most of these
    ("1.1 booleans", "a: [yes, No, ON, off, y, n, true, False, TRUE, tRUE]"),
    ("a quoted boolean word", "a: 'yes'\nb: \"on\""),
    ("dates and timestamps", "a: 2026-01-05\nb: 2026-01-05T09:00\nc: 2026-01-05 09:00:00\nd: 2026-01-05T09:00:00Z"),
    ("a quoted date", "a: '2026-01-05'"),
    ("clock times and sexagesimal numbers", "from: 8:00\nto: '08:00'\nc: 12:30:00\nd: 1:30"),
    ("octal, hex, binary and underscores", "a: 017\nb: 0o17\nc: 0x1F\nd: 0b101\ne: 1_000\nf: 09\ng: -017"),
    ("floats", "a: 1e3\nb: 1.0e3\nc: 1.0e+3\nd: .5\ne: +.5\nf: 1.\ng: 1_0.5\nh: .inf\ni: -.Inf\nj: .NaN"),
    ("nulls", "a: ~\nb: null\nc: Null\nd: NULL\ne:\nf: ''"),
    ("quoted numbers", "level: '1'\nb: \"017\"\nc: '1e3'"),
    ("numbers as keys", "1: a\n017: b\n'2': c"),
    ("a merge key", "base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2"),
    ("anchors and aliases", "a: &x [1, 2]\nb: *x"),
    ("a tag", "a: !!str 017\nb: !!int '3'"),
    ("several documents", "a: 1\n---\nb: 2"),
    ("a leading document marker", "---\na: 1\n"),
    ("a directive", "%YAML 1.1\n---\na: 1\n"),
    ("an explicit end", "a: 1\n...\n"),
    ("a complex key", "? [a, b]\n: 1\n"),
    ("a query with !=", "query: 'resource_name != \"x\"'\nq2: resource_name != x\n"),
    ("a duplicate key", "a: 1\na: 2"),
    ("a block scalar", "a: |\n  yes\n  017\nb: >\n  folded\n  text\n"),
    ("escapes", "a: \"\\x41\\u00e9\\t\"\nb: 'it''s'"),
    ("durations", "grant_for: 4h\neach: 30m\nevery: 7d\nx: 1.5h\ny: 90s\nz: 4"),
    ("an empty file", ""),
    ("only a comment", "# nothing\n"),
    ("a list at the top", "- a\n- b\n"),
]


@pytest.mark.parametrize("text", [pytest.param(t, id=d) for d, t in SNIPPETS])
def test_load_yaml_gives_exactly_what_pyyaml_gives(text: str) -> None:
    try:
        expected = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        with pytest.raises(type(exc)):
            load_yaml(text)
        return
    assert same(load_yaml(text), expected)


@needs_fast
@pytest.mark.parametrize("text", [pytest.param(t, id=d) for d, t in SNIPPETS])
def test_the_fast_parser_is_taken_only_when_its_data_is_pyyamls(text: str) -> None:
    taken, data = parse_fast(text)
    if taken:
        assert same(data, yaml.safe_load(text))


CONFIGS = [
    ("the spec example", SPEC_EXAMPLE),
    ("a minimal config", MINIMAL),
    ("a minimal config with a document marker", "---\n" + MINIMAL),
    ("the shipped example", (ROOT / "examples" / "accessbot.yml").read_text(encoding="utf-8")),
    ("the small bench data set", yaml.safe_dump(build(SIZES["small"]), sort_keys=False)),
    ("the small bench data set, flow style", yaml.safe_dump(build(SIZES["small"]), default_flow_style=True)),
]


@needs_fast
@pytest.mark.parametrize("text", [pytest.param(t, id=d) for d, t in CONFIGS])
def test_our_configs_are_parsed_fast_to_pyyamls_data(text: str) -> None:
    taken, data = parse_fast(text)
    assert taken
    assert same(data, yaml.safe_load(text))


@needs_fast
@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: yes", id="a plain 1.1 boolean"),
        pytest.param("a: 017", id="a leading zero"),
        pytest.param("a: 1e3", id="an exponent without a dot"),
        pytest.param("from: 8:00", id="a sexagesimal clock time"),
        pytest.param("a: 2026-01-05", id="a date"),
        pytest.param("a: !!str 1", id="a tag"),
        pytest.param("b: &x {y: 1}\na:\n  <<: *x", id="a merge key"),
        pytest.param("a: 1\na: 2", id="a duplicate key"),
    ],
)
def test_what_the_parsers_disagree_on_goes_to_pyyaml(text: str) -> None:
    assert parse_fast(text) == (False, None)


@pytest.mark.parametrize("text", [pytest.param(c[1], id=c[0]) for c in BAD_CONFIGS[:8]])
def test_compose_gives_pyyamls_nodes_and_lines(text: str) -> None:
    def marks(node: yaml.Node, out: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
        out.append((node.tag, node.start_mark.line, node.start_mark.column))
        children = node.value if isinstance(node, yaml.MappingNode | yaml.SequenceNode) else []
        for child in children:
            for part in child if isinstance(child, tuple) else (child,):
                marks(part, out)
        return out

    ours = compose_yaml(text)
    theirs = yaml.compose(text)
    assert ours is not None and theirs is not None
    assert marks(ours, []) == marks(theirs, [])


TOKENS = [
    "yes",
    "No",
    "on",
    "OFF",
    "true",
    "False",
    "y",
    "null",
    "~",
    "NULL",
    "1",
    "017",
    "-017",
    "0o17",
    "0x1F",
    "09",
    "1_000",
    "1e3",
    "1.0e3",
    "1.0e+3",
    ".5",
    "+.5",
    "1.",
    ".inf",
    "-.Inf",
    ".NaN",
    "8:00",
    "08:00",
    "20:00",
    "12:30:00",
    "1:30",
    "2026-01-05",
    "2026-01-05T09:00",
    "2026-01-05 09:00:00",
    "2026-01-05T09:00:00Z",
    "<<",
    "=",
    "4h",
    "30m",
    "1.5h",
    "db-017",
    "prod",
    "on call",
    "a != b",
    "user@example.com",
    "0",
    "-1",
    "+1",
]
QUOTES = ["{}", "'{}'", '"{}"']


@needs_fast
@given(
    st.lists(
        st.tuples(st.sampled_from(TOKENS), st.sampled_from(QUOTES), st.sampled_from(TOKENS), st.sampled_from(QUOTES)),
        min_size=1,
        max_size=6,
    ),
    st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_whatever_the_tokens_the_fast_path_never_changes_the_data(
    pairs: list[tuple[str, str, str, str]], flow: bool
) -> None:
    entries = [(k_quote.format(key), v_quote.format(value)) for key, k_quote, value, v_quote in pairs]
    if flow:
        text = "top: {" + ", ".join(f"{k}: [{v}, {v}]" for k, v in entries) + "}\n"
    else:
        text = "top:\n" + "".join(f"  {k}:\n    - {v}\n" for k, v in entries)
    try:
        expected = yaml.safe_load(text)
    except yaml.YAMLError:
        return
    taken, data = parse_fast(text)
    if taken:
        assert same(data, expected), text


@needs_fast
def test_one_check_of_a_file_read_in_parts_remembers_what_it_found_in_each_part() -> None:
    """A file read in parts is checked with one :class:`PlainData`: strings found the same in one part are not
    looked at again, and one found doubtful (a plain ``yes``, True to PyYAML) is refused in every part it is in,
    as a key, in a list among known strings, alone or nested."""
    text = "a: [ok, fine]\nb: [ok, fine, yes]\nc: {yes: 1}\nd: [{e: [yes]}]\nf: 'on'\ng: [ok, 'on']\n"
    plain = yaml_source.certain_text(text)
    assert plain is not None
    lines = text.splitlines(keepends=True)
    taken = [yaml_source.parse_part(line, plain)[0] for line in lines]
    assert taken == [True, False, False, False, True, True]
    again = [yaml_source.parse_part(line, plain) for line in lines]  # from what was remembered
    assert [ok for ok, _ in again] == taken
    assert all(same(data, yaml.safe_load(line)) for line, (ok, data) in zip(lines, again, strict=True) if ok)
