"""Attribute conditions: every op, attribute kinds, case-insensitivity, owner, match all/any, index keys."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.conditions import (
    compile_conditions,
    condition_holds,
    identity_keys,
    index_decides,
    index_keys,
    matches,
)
from policy.config import Condition, ConditionSet, Op
from policy.identity import Identity

ALICE = Identity(
    slack_id="U0ALICE",
    email="Alice@Example.com",
    groups=frozenset({"sre", "Backend"}),
    manager="carol@example.com",
    oncall=frozenset({"sre-primary"}),
    attributes={"department": "Engineering", "level": "L5"},
    owner_of=frozenset({"prod-postgres"}),
)
NOBODY = Identity(slack_id=None, email=None)


def cond(attribute: str, op: str, *values: str) -> Condition:
    return Condition.model_validate({"attribute": attribute, "op": op, "values": list(values)})


def cset(match: str, *conditions: Condition) -> ConditionSet:
    return ConditionSet(match=match, conditions=list(conditions))  # type: ignore[arg-type]


CONDITION_CASES: list[Any] = [
    # (id, condition, identity, owned_integrations, expected)
    ("user is email", cond("user", "is", "alice@example.com"), ALICE, (), True),
    ("user is slack id, other case", cond("user", "is", "u0alice"), ALICE, (), True),
    ("user is someone else", cond("user", "is", "bob@example.com"), ALICE, (), False),
    ("user is one of several", cond("user", "is", "bob@example.com", "ALICE@example.com"), ALICE, (), True),
    ("user is_not someone else", cond("user", "is_not", "bob@example.com"), ALICE, (), True),
    ("user is_not herself by id", cond("user", "is_not", "bob", "U0ALICE"), ALICE, (), False),
    ("user ends_with domain", cond("user", "ends_with", "@example.com"), ALICE, (), True),
    ("user starts_with id prefix", cond("user", "starts_with", "u0"), ALICE, (), True),
    ("group is one of many groups", cond("group", "is", "backend"), ALICE, (), True),
    ("group is missing", cond("group", "is", "dba"), ALICE, (), False),
    ("group is_not a group she has", cond("group", "is_not", "dba", "sre"), ALICE, (), False),
    ("group is_not groups she lacks", cond("group", "is_not", "dba", "payments"), ALICE, (), True),
    ("group contains substring", cond("group", "contains", "ACK"), ALICE, (), True),
    ("group contains nothing", cond("group", "contains", "xyz"), ALICE, (), False),
    ("group does_not_contain substring", cond("group", "does_not_contain", "ack"), ALICE, (), False),
    ("group does_not_contain absent", cond("group", "does_not_contain", "xyz", "qq"), ALICE, (), True),
    ("group starts_with", cond("group", "starts_with", "back"), ALICE, (), True),
    ("group ends_with", cond("group", "ends_with", "END"), ALICE, (), True),
    ("group ends_with none", cond("group", "ends_with", "ops"), ALICE, (), False),
    ("manager is", cond("manager", "is", "CAROL@example.com"), ALICE, (), True),
    ("manager is_not", cond("manager", "is_not", "carol@example.com"), ALICE, (), False),
    ("oncall is schedule", cond("oncall", "is", "SRE-primary"), ALICE, (), True),
    ("oncall is other schedule", cond("oncall", "is", "sre-secondary"), ALICE, (), False),
    ("attribute is, case-insensitive", cond("department", "is", "engineering"), ALICE, (), True),
    ("attribute contains", cond("department", "contains", "gin"), ALICE, (), True),
    ("attribute starts_with", cond("level", "starts_with", "l"), ALICE, (), True),
    ("attribute is_not other value", cond("level", "is_not", "L6", "L7"), ALICE, (), True),
    ("attribute name is exact", cond("Department", "is", "engineering"), ALICE, (), False),
    ("absent attribute is", cond("region", "is", "eu"), ALICE, (), False),
    ("absent attribute is_not", cond("region", "is_not", "eu"), ALICE, (), True),
    ("absent attribute contains", cond("region", "contains", ""), ALICE, (), False),
    ("absent attribute does_not_contain", cond("region", "does_not_contain", "eu"), ALICE, (), True),
    ("no manager is", cond("manager", "is", "carol@example.com"), NOBODY, (), False),
    ("no manager is_not", cond("manager", "is_not", "carol@example.com"), NOBODY, (), True),
    ("no ids user is", cond("user", "is", "alice@example.com"), NOBODY, (), False),
    ("no groups does_not_contain", cond("group", "does_not_contain", "sre"), NOBODY, (), True),
    ("empty value contains anything", cond("group", "contains", ""), ALICE, (), True),
    ("owner of the request's integration", cond("owner", "is", "true"), ALICE, ("prod-postgres",), True),
    ("owner, other integration", cond("owner", "is", "true"), ALICE, ("deploy",), False),
    ("owner, no request integrations", cond("owner", "is", "true"), ALICE, (), False),
    ("owner is false when not owning", cond("owner", "is", "false"), ALICE, ("deploy",), True),
    ("owner is_not true", cond("owner", "is_not", "TRUE"), ALICE, ("deploy", "prod-postgres"), False),
    (
        "owner value from YAML bool",
        Condition.model_validate({"attribute": "owner", "values": [True]}),
        ALICE,
        ("prod-postgres",),
        True,
    ),
]


@pytest.mark.parametrize(
    ("condition", "identity", "owned", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CONDITION_CASES],
)
def test_condition_holds(
    condition: Condition, identity: Identity, owned: tuple[str, ...], expected: bool
) -> None:
    assert condition_holds(condition, identity, owned_integrations=frozenset(owned)) is expected


SRE = cond("group", "is", "sre")
DBA = cond("group", "is", "dba")
ENG = cond("department", "is", "engineering")


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        pytest.param(cset("all", SRE, ENG), True, id="all: every condition holds"),
        pytest.param(cset("all", SRE, DBA), False, id="all: one condition fails"),
        pytest.param(cset("any", DBA, ENG), True, id="any: one condition holds"),
        pytest.param(cset("any", DBA, cond("region", "is", "eu")), False, id="any: none holds"),
        pytest.param(cset("all", DBA), False, id="all: single failing condition"),
        pytest.param(cset("any", SRE), True, id="any: single holding condition"),
    ],
)
def test_matches(conditions: ConditionSet, expected: bool) -> None:
    assert matches(conditions, ALICE) is expected


def test_matches_defaults_to_all() -> None:
    conditions = ConditionSet.model_validate({"conditions": [SRE.model_dump(), DBA.model_dump()]})
    assert conditions.match == "all"
    assert not matches(conditions, ALICE)


def test_matches_passes_owned_integrations() -> None:
    approvers = cset("any", DBA, cond("owner", "is", "true"))
    assert matches(approvers, ALICE, owned_integrations=frozenset({"prod-postgres"}))
    assert not matches(approvers, ALICE)


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        pytest.param(cset("all", SRE), frozenset({("group", "sre")}), id="all: single is on group"),
        pytest.param(
            cset("all", cond("group", "is", "a", "b", "c"), cond("user", "is", "X@example.com"), ENG),
            frozenset({("user", "x@example.com")}),
            id="all: fewest values wins, lower-cased",
        ),
        pytest.param(cset("all", ENG), None, id="all: no indexable attribute"),
        pytest.param(cset("all", cond("group", "is_not", "sre")), None, id="all: is_not is not indexable"),
        pytest.param(
            cset("all", cond("group", "contains", "s"), cond("oncall", "is", "P")),
            frozenset({("oncall", "p")}),
            id="all: skips non-is conditions",
        ),
        pytest.param(
            cset("any", SRE, cond("oncall", "is", "primary"), cond("user", "is", "U1", "u2")),
            frozenset({("group", "sre"), ("oncall", "primary"), ("user", "u1"), ("user", "u2")}),
            id="any: union of is conditions",
        ),
        pytest.param(cset("any", SRE, ENG), None, id="any: one unindexable condition spoils it"),
        pytest.param(cset("any", SRE, cond("group", "starts_with", "x")), None, id="any: non-is op"),
    ],
)
def test_index_keys(conditions: ConditionSet, expected: frozenset[tuple[str, str]] | None) -> None:
    assert index_keys(conditions) == expected


def test_identity_keys() -> None:
    assert identity_keys(ALICE) == {
        ("user", "u0alice"),
        ("user", "alice@example.com"),
        ("group", "sre"),
        ("group", "backend"),
        ("oncall", "sre-primary"),
    }
    assert identity_keys(NOBODY) == frozenset()


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        pytest.param(cset("all", SRE), True, id="one is on group: the key decides"),
        pytest.param(cset("any", SRE), True, id="one is, match any"),
        pytest.param(cset("all", cond("user", "is", "U1", "u2")), True, id="one is with several values"),
        pytest.param(cset("any", SRE, cond("oncall", "is", "primary")), True, id="any: every condition keyed"),
        pytest.param(cset("all", SRE, DBA), False, id="all of two keyed conditions: both needed"),
        pytest.param(cset("all", SRE, ENG), False, id="all: the attribute is still to check"),
        pytest.param(cset("any", SRE, ENG), False, id="any: an unindexable condition"),
        pytest.param(cset("all", cond("group", "is_not", "sre")), False, id="is_not is not keyed"),
        pytest.param(cset("all", cond("manager", "is", "x")), False, id="manager is not an index attribute"),
    ],
)
def test_index_decides(conditions: ConditionSet, expected: bool) -> None:
    assert index_decides(conditions) is expected


@pytest.mark.parametrize(
    ("group", "wanted"),
    [
        pytest.param("SRE", "sre", id="ascii case"),
        pytest.param("STRASSE", "straße", id="case folding beyond lower()"),
    ],
)
def test_index_keys_agree_with_matching(group: str, wanted: str) -> None:
    identity = Identity(slack_id=None, email=None, groups=frozenset({group}))
    conditions = cset("all", cond("group", "is", wanted))
    assert matches(conditions, identity)
    assert index_keys(conditions) == identity_keys(identity)


# --- properties ---------------------------------------------------------------------------------------------

# A small alphabet with case pairs (and ß/SS, whose case folds differ from their lower case) so that
# generated values collide often enough to exercise both outcomes.
_text = st.text(alphabet="abAB-ßS", min_size=0, max_size=3)
_values = st.frozensets(_text, max_size=3)
_ATTRIBUTES = ("user", "group", "manager", "oncall", "owner", "department", "level")
_OPS: tuple[str, ...] = get_args(Op)
_INTEGRATIONS = st.frozensets(st.sampled_from(("a", "b", "c")), max_size=3)

identities = st.builds(
    Identity,
    slack_id=st.none() | _text,
    email=st.none() | _text,
    groups=_values,
    manager=st.none() | _text,
    oncall=_values,
    attributes=st.dictionaries(st.sampled_from(("department", "level")), _text, max_size=2),
    owner_of=_INTEGRATIONS,
)
conditions = st.builds(
    lambda attribute, op, values: cond(attribute, op, *values),
    st.sampled_from(_ATTRIBUTES),
    st.sampled_from(_OPS),
    st.lists(_text | st.sampled_from(("true", "false", "ss", "SS")), min_size=1, max_size=3),
)
condition_sets = st.builds(cset, st.sampled_from(("all", "any")), conditions) | st.builds(
    lambda match, items: cset(match, *items),
    st.sampled_from(("all", "any")),
    st.lists(conditions, min_size=1, max_size=4),
)


@given(condition_sets, identities, _INTEGRATIONS)
def test_index_keys_never_exclude_a_matching_identity(
    cs: ConditionSet, identity: Identity, owned: frozenset[str]
) -> None:
    if matches(cs, identity, owned_integrations=owned):
        keys = index_keys(cs)
        assert keys is None or keys & identity_keys(identity)


@given(st.sampled_from(_ATTRIBUTES), st.lists(_text, min_size=1, max_size=3), identities, _INTEGRATIONS)
@pytest.mark.parametrize(("positive", "negative"), [("is", "is_not"), ("contains", "does_not_contain")])
def test_negative_ops_are_complements(
    positive: str, negative: str, attribute: str, values: list[str], identity: Identity, owned: frozenset[str]
) -> None:
    holds = condition_holds(cond(attribute, positive, *values), identity, owned_integrations=owned)
    assert (
        condition_holds(cond(attribute, negative, *values), identity, owned_integrations=owned) is not holds
    )


@given(st.sampled_from(("manager", "department", "owner")), _text, identities, _INTEGRATIONS)
def test_single_valued_is_matches_exactly_that_value(
    attribute: str, value: str, identity: Identity, owned: frozenset[str]
) -> None:
    """For a single-valued attribute, ``is v`` holds iff the value equals v case-insensitively."""
    actual = {
        "manager": identity.manager,
        "department": identity.attributes.get("department"),
        "owner": "true" if identity.owner_of & owned else "false",
    }[attribute]
    expected = actual is not None and actual.casefold() == value.casefold()
    assert condition_holds(cond(attribute, "is", value), identity, owned_integrations=owned) is expected
    assert (
        condition_holds(cond(attribute, "is_not", value), identity, owned_integrations=owned) is not expected
    )


@given(_text, _text)
def test_comparisons_ignore_case(value: str, wanted: str) -> None:
    identity = Identity(slack_id=None, email=None, attributes={"department": value})
    for op in _OPS:
        lower = condition_holds(cond("department", op, wanted.lower()), identity)
        upper = condition_holds(cond("department", op, wanted.upper()), identity)
        assert lower is upper or wanted.lower().casefold() != wanted.upper().casefold()


@given(condition_sets, identities, _INTEGRATIONS)
def test_matches_combines_condition_holds(
    cs: ConditionSet, identity: Identity, owned: frozenset[str]
) -> None:
    results = [condition_holds(c, identity, owned_integrations=owned) for c in cs.conditions]
    expected = all(results) if cs.match == "all" else any(results)
    assert matches(cs, identity, owned_integrations=owned) is expected


@given(st.lists(_text, min_size=1, max_size=3), identities)
def test_several_values_mean_any_of_them(values: list[str], identity: Identity) -> None:
    for op in ("is", "contains", "starts_with", "ends_with"):
        together = condition_holds(cond("group", op, *values), identity)
        assert together is any(condition_holds(cond("group", op, v), identity) for v in values)


@given(condition_sets, identities)
def test_a_compiled_condition_set_decides_as_matches(cs: ConditionSet, identity: Identity) -> None:
    assert compile_conditions(cs)(identity) is matches(cs, identity)


_keyed_conditions = st.builds(
    lambda attribute, values: cond(attribute, "is", *values),
    st.sampled_from(("user", "group", "oncall")),
    st.lists(_text | st.sampled_from(("ss", "SS")), min_size=1, max_size=3),
)
_keyed_sets = st.builds(
    lambda match, items: cset(match, *items),
    st.sampled_from(("all", "any")),
    st.lists(_keyed_conditions, min_size=1, max_size=3),
)


@given(condition_sets | _keyed_sets, identities, _INTEGRATIONS)
def test_a_set_the_index_decides_holds_exactly_for_identities_sharing_a_key(
    cs: ConditionSet, identity: Identity, owned: frozenset[str]
) -> None:
    """What lets the flow index skip evaluating such requestors (and remember them per set of keys)."""
    if index_decides(cs):
        keys = index_keys(cs)
        assert keys is not None
        assert matches(cs, identity, owned_integrations=owned) is bool(keys & identity_keys(identity))
