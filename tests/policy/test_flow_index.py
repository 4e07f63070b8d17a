"""The flow index and what it remembers (policy/flow_index.py): answers equal those of the rules read plainly,
whatever was asked before; shared where they may be, apart where anything they depend on differs; bounded."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.errors import InvalidRequest, NotEligible
from policy.flows import CompiledPolicy
from policy.identity import Identity
from policy.validation import load_config_text
from tests.policy.test_flows import (
    BEN,
    NOON,
    OLLIE,
    POLICY,
    RESOURCE_KEYS,
    SAM,
    SATURDAY_NOON,
    _moments,
    compiled_choice,
    plain_choice,
    plain_usable,
)

_GROUPS = ("sre", "SRE", "dba", "backend", "tie", "managers", "contractors", "payments", "hr", "other")
_PERMISSIONS = ("read_only", "read_write", "deployer", "admin", "member", "operator", "viewer", "reader", "use")

identities = st.builds(
    Identity,
    # Always a Slack id, as in the bot (someone with no id at all is not "themselves" to grantee_refusal,
    # a corner choose_flow and the plain reading have always answered differently).
    slack_id=st.sampled_from(("U0ALICE", "U0DANA", "U0NEW")),
    email=st.none() | st.sampled_from(("alice@example.com", "ALICE@example.com", "new@example.com")),
    groups=st.frozensets(st.sampled_from(_GROUPS), max_size=3),
    manager=st.none() | st.sampled_from(("mona@example.com", "U0MONA")),
    oncall=st.frozensets(st.just("sre-primary"), max_size=1),
    attributes=st.dictionaries(st.just("department"), st.sampled_from(("eng", "ENG", "sales")), max_size=1),
    deactivated=st.booleans(),
)


@given(identities, _moments, st.sampled_from(["self_serve", "automatic"]))
@settings(max_examples=300)
def test_usable_flows_of_any_identity_agree_with_the_plain_reading(
    identity: Identity, now: datetime, kind: str
) -> None:
    """One policy for every example: what earlier examples left in its caches must not change an answer."""
    assert [c.name for c in POLICY.usable_flows(identity, now, kind=kind)] == plain_usable(identity, now, kind)


@given(
    identities,
    _moments,
    st.lists(st.sampled_from(RESOURCE_KEYS), min_size=1, max_size=2),
    st.sampled_from(_PERMISSIONS),
)
@settings(max_examples=300, deadline=None)
def test_choose_flow_for_any_identity_agrees_with_the_plain_reading(
    identity: Identity, now: datetime, keys: list[str], permission: str
) -> None:
    assert compiled_choice(identity, now, keys, permission, ()) == plain_choice(identity, now, keys, permission, ())


GROUP_FLOWS = """\
timezone: UTC
integrations:
  - name: db
    type: noop
    resources: [{type: database, name: a}, {type: database, name: b}]
    permissions: {read: {}, write: {}}
flows:
  - name: readers
    requestors: {conditions: [{attribute: group, values: [readers, SRE]}]}
    targets: [{integration: db, permissions: [read]}]
  - name: writers
    requestors: {conditions: [{attribute: group, values: [writers]}]}
    targets: [{integration: db, permissions: [write], resources: {names: [a]}}]
    approval: {type: approvers, groups: [{conditions: [{attribute: group, values: [sre]}]}]}
  - name: both
    requestors:
      match: all
      conditions: [{attribute: group, values: [readers]}, {attribute: group, values: [writers]}]
    targets: [{integration: db, permissions: [read, write]}]
  - name: alice-writes
    requestors: {match: any, conditions: [{attribute: user, values: [alice@example.com]}]}
    targets: [{integration: db, permissions: [write]}]
"""


def group_policy() -> CompiledPolicy:
    return CompiledPolicy(load_config_text(GROUP_FLOWS))


def names(policy: CompiledPolicy, identity: Identity) -> list[str]:
    return [c.name for c in policy.usable_flows(identity, NOON)]


def test_never_seen_users_with_the_same_keys_share_one_answer() -> None:
    policy = group_policy()
    first = Identity("U1", "one@example.com", groups=frozenset({"sre", "writers"}))
    second = Identity("U2", "two@example.com", groups=frozenset({"WRITERS", "sre"}), attributes={"x": "y"})
    assert names(policy, first) == names(policy, second) == ["readers", "writers"]
    assert policy._usable(first, "self_serve") is policy._usable(second, "self_serve")


def test_answers_part_where_a_key_differs() -> None:
    policy = group_policy()
    bob = Identity("U1", "bob@example.com", groups=frozenset({"writers"}))
    alice = Identity("U2", "alice@example.com", groups=frozenset({"writers"}))
    sre = Identity("U3", "sre@example.com", groups=frozenset({"sre"}))
    assert names(policy, bob) == ["writers"]
    assert names(policy, alice) == ["alice-writes", "writers"]
    assert names(policy, sre) == ["readers"]
    assert names(policy, dataclasses.replace(bob, groups=frozenset())) == []
    assert names(policy, dataclasses.replace(bob, groups=frozenset({"readers"}))) == ["readers"]  # not "both"
    assert names(policy, dataclasses.replace(bob, groups=frozenset({"readers", "writers"}))) == [
        "both",
        "readers",
        "writers",
    ]
    assert policy.choose_flow(alice, NOON, ["db/database/b"], "write").flow.name == "alice-writes"
    with pytest.raises(NotEligible):
        policy.choose_flow(bob, NOON, ["db/database/b"], "write")


def test_conditions_beyond_the_key_are_still_evaluated_per_identity() -> None:
    """Sam and Alice share their groups; db-read-sre also needs department eng."""
    policy = CompiledPolicy(POLICY.config)
    alice = dataclasses.replace(SAM, slack_id="U0ALICE2", email="alice2@example.com", attributes={"department": "eng"})
    for identity in (SAM, alice, SAM):
        assert [c.name for c in policy.usable_flows(identity, NOON)] == plain_usable(identity, NOON)
    assert "db-read-sre" in [c.name for c in policy.usable_flows(alice, NOON)]
    assert "db-read-sre" not in [c.name for c in policy.usable_flows(SAM, NOON)]


def test_the_remembered_flows_depend_on_who_is_on_call() -> None:
    policy = CompiledPolicy(POLICY.config)
    off_shift = dataclasses.replace(OLLIE, oncall=frozenset())
    assert [c.name for c in policy.usable_flows(OLLIE, NOON, kind="automatic")] == ["auto-commanders"]
    assert policy.usable_flows(off_shift, NOON, kind="automatic") == []
    assert [c.name for c in policy.usable_flows(OLLIE, NOON, kind="automatic")] == ["auto-commanders"]


def test_windows_are_looked_at_per_call_with_the_remembered_flows() -> None:
    """office-deploy (no approval, office hours) wins on a Wednesday; on Saturday deploy-strict is left."""
    policy = CompiledPolicy(POLICY.config)
    for _ in range(2):
        assert policy.choose_flow(BEN, NOON, ["deploy/service/search-api"], "admin").flow.name == "office-deploy"
        assert policy.choose_flow(BEN, SATURDAY_NOON, ["deploy/service/search-api"], "admin").flow.name == (
            "deploy-strict"
        )


def choice_by(policy: CompiledPolicy, requester: Identity, key: str, permission: str) -> object:
    """:func:`compiled_choice` with another policy than the shared one."""
    try:
        return policy.choose_flow(requester, NOON, [key], permission).flow.name
    except NotEligible as error:
        return (NotEligible, error.field)
    except InvalidRequest:
        return "invalid request"


def test_the_caches_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("policy.flow_index.IDENTITY_CACHE_SIZE", 2)
    monkeypatch.setattr("policy.flow_index.PAIRS_REMEMBERED", 1)
    policy = CompiledPolicy(POLICY.config)
    people = [Identity(f"U{i}", None, groups=frozenset({group})) for i, group in enumerate(_GROUPS)]
    for person in people * 2:
        for permission in _PERMISSIONS:
            for key in ("deploy/service/billing-api", "bulk/item/r000", "prod-postgres/database/ledger"):
                assert choice_by(policy, person, key, permission) == plain_choice(person, NOON, [key], permission, ())
    index = policy._index
    assert all(len(cache) <= 2 for cache in index._by_identity.values())
    assert all(len(kind.by_keys) <= 2 for kind in index._kinds.values())
    for kind in index._kinds.values():
        assert all(len(usable.offering) <= 1 for usable in kind.by_keys.values())
