"""Identities: the match key that caches of condition results are keyed by."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from policy.identity import Identity

_text = st.text(alphabet="abAB-ßS,'\x00", max_size=3)
_values = st.frozensets(_text, max_size=3)
identities = st.builds(
    Identity,
    slack_id=st.none() | _text,
    email=st.none() | _text,
    groups=_values,
    manager=st.none() | _text,
    oncall=_values,
    attributes=st.dictionaries(_text, _text, max_size=3),
    owner_of=st.frozensets(st.sampled_from(("a", "b")), max_size=2),
    deactivated=st.booleans(),
    is_bot=st.booleans(),
    display_name=st.none() | _text,
)


def read_by_conditions(identity: Identity) -> tuple[Any, ...]:
    """Everything a requestor, grantee or space condition (or the activity check) can look at."""
    return (
        identity.slack_id,
        identity.email,
        identity.groups,
        identity.manager,
        identity.oncall,
        dict(identity.attributes),
        identity.deactivated,
        identity.is_bot,
    )


@given(identities, identities)
def test_match_keys_are_equal_exactly_when_what_conditions_read_is(a: Identity, b: Identity) -> None:
    same = read_by_conditions(a) == read_by_conditions(b)
    assert (a.match_key == b.match_key) is same
    if same:
        assert hash(a.match_key) == hash(b.match_key)


@given(identities)
def test_a_rebuilt_identity_has_an_equal_key(identity: Identity) -> None:
    again = dataclasses.replace(identity, attributes=dict(reversed(list(identity.attributes.items()))))
    assert again.match_key == identity.match_key
    assert again.match_key is not identity.match_key  # computed per identity, once
    assert identity.match_key is identity.match_key


def test_what_conditions_do_not_read_leaves_the_key_alone() -> None:
    alice = Identity("U1", "a@example.com", groups=frozenset({"sre"}))
    assert dataclasses.replace(alice, owner_of=frozenset({"db"}), display_name="Alice").match_key == alice.match_key


def test_attributes_are_told_apart_by_name_and_value() -> None:
    one = Identity("U1", None, attributes={"a": "b", "c": "d"})
    other = Identity("U1", None, attributes={"a": "c", "b": "d"})
    assert one.match_key != other.match_key
    assert Identity("U1", None, manager=None).match_key != Identity("U1", None, manager="").match_key
