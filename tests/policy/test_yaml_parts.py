"""policy/yaml_parts.py: a file read in parts gives exactly PyYAML's data, or is not cut at all."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from policy import yaml_source
from policy.config import Config
from policy.validation import _validate_in_parts, load_config_text
from policy.yaml_parts import NotCertain, Parts, cut
from tests.policy.test_config import SPEC_EXAMPLE
from tests.policy.test_yaml_source import CONFIGS, SNIPPETS, same

pytestmark = pytest.mark.skipif(not yaml_source.fast_parser_available(), reason="yaml-rs is not installed")

LISTS = {"integrations": True, "flows": True, "directory": {"users": True}}


def assembled(parts: Parts) -> Any:
    data = parts.rest()
    for path in parts.lists:
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = list(parts.items(path))
    return data


def in_order(data: Any) -> Any:
    """Mappings with their keys sorted: a cut list comes back after the keys that were not cut."""
    if isinstance(data, dict):
        return {key: in_order(data[key]) for key in sorted(data, key=repr)}
    if isinstance(data, list):
        return [in_order(item) for item in data]
    return data


def read_in_parts(text: str) -> Any:
    """The data of ``text`` read in parts; ``NotCertain`` when it was not cut (or a part could not be vouched for)."""
    parts = cut(text, LISTS)
    if parts is None:
        raise NotCertain("not cut")
    return assembled(parts)


def agrees_with_pyyaml(text: str) -> bool:
    """True when the text was read in parts (and then it must be PyYAML's data); False when it was not."""
    try:
        ours = read_in_parts(text)
    except NotCertain:
        return False
    assert same(in_order(ours), in_order(yaml.safe_load(text)))
    return True


@pytest.mark.parametrize("text", [pytest.param(t, id=d) for d, t in CONFIGS + SNIPPETS])
def test_a_file_read_in_parts_is_exactly_pyyamls_data(text: str) -> None:
    agrees_with_pyyaml(text)


@pytest.mark.parametrize("text", [pytest.param(t, id=d) for d, t in CONFIGS if "flow style" not in d])
def test_our_configs_are_cut_and_validate_as_when_read_whole(text: str) -> None:
    assert agrees_with_pyyaml(text)
    in_parts = _validate_in_parts(text)
    assert in_parts is not None
    assert in_parts == Config.model_validate(yaml.safe_load(text))


ITEMS = "integrations:\n- name: a\n  type: noop\n- name: b\n  type: noop\nflows: []\n"

NOT_CUT = [
    # (description, text): layouts where the item boundaries are not certain from the lines alone
    ("an anchor in one item, an alias in another", "flows:\n- &f {name: a}\n- *f\n"),
    ("a key written twice", ITEMS + "flows:\n- name: c\n"),
    ("a quoted top-level key", '"admins": []\n' + ITEMS),
    ("a list at the top", "- a\n- b\n"),
    ("a flow mapping for the whole file", "{flows: [{name: a}]}\n"),
    ("a tab where the indentation is", "flows:\n- name: a\n\t- name: b\n"),
    ("something between the key and its first item", "flows:\n  stray\n- name: a\n"),
    ("items at two indentations", "flows:\n  - name: a\n - name: b\n"),
    ("a line shallower than its item's list", "flows:\n  - name: a\n type: b\n"),
    ("a second document", "flows:\n- name: a\n---\nflows:\n- name: b\n"),
    ("a tag", "flows:\n- !!map {name: a}\n"),
    ("a complex key", "? flows\n: [a]\n"),
    ("a plain key with no space after its colon", "flows:\n- a\nx:y\n"),
]


@pytest.mark.parametrize("text", [pytest.param(t, id=d) for d, t in NOT_CUT])
def test_a_layout_that_leaves_doubt_is_not_cut(text: str) -> None:
    assert cut(text, LISTS) is None


UNSURE_PARTS = [
    # (description, text): cut, but a part the fast parser cannot vouch for: read whole instead
    ("a quoted scalar running into the next item", "flows:\n- name: 'a\n- b'\n"),
    ("a flow list running into the next item", "flows:\n- [a,\n- b]\n"),
    ("a plain boolean PyYAML reads as one", "flows:\n- name: a\n  on: yes\n"),
    ("a key twice in one item", "flows:\n- name: a\n  name: b\n"),
]


@pytest.mark.parametrize("text", [pytest.param(t, id=d) for d, t in UNSURE_PARTS])
def test_a_part_the_fast_parser_cannot_vouch_for_is_not_taken(text: str) -> None:
    with pytest.raises(NotCertain):
        read_in_parts(text)


CUT = [
    ("an indentless list", ITEMS),
    ("an indented list", "flows:\n  - name: a\n    type: x\n  - name: b\n"),
    ("comments and blank lines between items", "flows:   # the flows\n\n# first\n- name: a\n\n  # inside\n- b\n"),
    ("a list at the end without a newline", "admins: []\nflows:\n- name: a\n- name: b"),
    ("an item of its own lines", "flows:\n-\n  name: a\n-\n  name: b\n"),
    ("a block scalar in an item", "flows:\n- description: |\n    two\n    lines\n  name: a\n- name: b\n"),
    ("a directory with only users", "directory:\n  users:\n  - email: a@x\n  - email: b@x\nflows: []\n"),
    ("a directory with users in the middle",
     "directory:\n  slack_usergroups: true\n  users:\n    - {email: a@x}\n  oncall: []\nadmins: [a@x]\n"),
    ("a document start", "---\nflows:\n- name: a\n"),
    ("a flow list stays whole", "flows: [{name: a}, {name: b}]\nintegrations:\n- name: c\n"),
    ("nested lists in an item", "flows:\n- targets:\n  - {bundle: x}\n  - bundle: y\n  name: a\n"),
    ("Windows line ends", ITEMS.replace("\n", "\r\n") + "\r\n# end\r\n"),
]


@pytest.mark.parametrize("text", [pytest.param(t, id=d) for d, t in CUT])
def test_a_certain_layout_is_cut_into_pyyamls_data(text: str) -> None:
    assert agrees_with_pyyaml(text)


SCALARS = st.sampled_from(["a", "b c", "'q'", '"d e"', "1", "4h", "prod-1", "x: y", "[a, b]", "{k: v}", "''", "-1"])
KEYS = st.sampled_from(["name", "type", "path", "tags", "values", "x"])


@st.composite
def items(draw: st.DrawFn, indent: int) -> str:
    """One list item as a user might write it: flow style, a block mapping, nested lists, comments."""
    pad = " " * indent
    shape = draw(st.sampled_from(["flow", "block", "nested", "scalar", "multi-line"]))
    if shape == "scalar":
        return f"{pad}- {draw(SCALARS)}\n"
    if shape == "multi-line":  # a scalar over two lines, the second at any indentation, perhaps like an item
        quote = draw(st.sampled_from(["", "'", '"']))
        second = " " * draw(st.integers(0, indent + 4)) + draw(st.sampled_from(["", "- ", "x: "]))
        return f"{pad}- name: {quote}first\n{second}second{quote}\n"
    if shape == "flow":
        pairs = draw(st.dictionaries(KEYS, SCALARS.filter(lambda s: ": " not in s), min_size=1, max_size=3))
        return f"{pad}- {{{', '.join(f'{k}: {v}' for k, v in pairs.items())}}}\n"
    pairs = draw(st.dictionaries(KEYS, SCALARS, min_size=1, max_size=3))
    lines = []
    for n, (key, value) in enumerate(pairs.items()):
        lead = f"{pad}- " if n == 0 else f"{pad}  "
        if shape == "nested" and n == 0:
            lines.append(f"{lead}{key}:\n{pad}  - {value}\n{pad}  - other\n")
        else:
            lines.append(f"{lead}{key}: {value}\n")
        if draw(st.booleans()):
            lines.append(f"{pad}  # a comment\n" if draw(st.booleans()) else "\n")
    return "".join(lines)


@st.composite
def files(draw: st.DrawFn) -> str:
    sections = []
    for key in draw(st.permutations(["integrations", "flows", "admins", "timezone"])):
        if key in ("admins", "timezone"):
            sections.append(f"{key}: {draw(SCALARS)}\n")
            continue
        indent = draw(st.sampled_from([0, 2, 4]))
        body = "".join(draw(st.lists(items(indent), min_size=1, max_size=4)))
        sections.append(f"{key}:{draw(st.sampled_from(['', '  # list', ' ']))}\n{body}")
    return "".join(sections)


@given(files())
@settings(max_examples=300, deadline=None)
def test_any_file_read_in_parts_is_pyyamls_data(text: str) -> None:
    try:
        expected = yaml.safe_load(text)
    except yaml.YAMLError:
        with pytest.raises(NotCertain):
            read_in_parts(text)
        return
    try:
        ours = read_in_parts(text)
    except NotCertain:
        return
    assert same(in_order(ours), in_order(expected))


def test_an_item_that_does_not_validate_is_reported_from_the_whole_file() -> None:
    text = SPEC_EXAMPLE.replace("max_times: 3", "max_times: 30")
    assert cut(text, LISTS) is not None
    with pytest.raises(Exception) as caught:
        load_config_text(text)
    assert "flows[0].extend.max_times" in str(caught.value)
    assert "line " in str(caught.value)
