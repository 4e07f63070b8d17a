"""Approvals (SPEC §5): who is eligible (groups, tiers, owner, on-call, self-approval); the vote state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from freezegun import freeze_time
from hypothesis import given
from hypothesis import strategies as st

from policy.approvals import TIER_BASE, ApprovalState, Vote, approval_state, eligible_groups, group_label
from policy.config import Approval, Directory
from policy.directory import DirectoryIndex
from policy.identity import Identity


def person(name: str, *groups: str, **extra: Any) -> Identity:
    return Identity(
        slack_id=f"U{name.upper()}", email=f"{name}@example.com", groups=frozenset(groups), **extra
    )


DANA = person("dana", "dba")  # approver group 0
OSCAR = person("oscar", oncall=frozenset({"sre-primary"}))  # approver group 1
BOTH = person("bea", "dba", oncall=frozenset({"sre-primary"}))  # in both groups
DREW = person("drew", "dba")  # another member of group 0
CTO = person("cto")  # escalation tier 1
VP = person("vp")  # escalation tier 2
OWNER = person("owen", owner_of=frozenset({"prod-postgres"}))
ALICE = person("alice", "sre", "dba")  # a requester who happens to be a dba
GRACE = person("grace", "dba")  # a grantee who happens to be a dba
NOBODY = person("nobody", "marketing")
GONE = person("gone", "dba", deactivated=True)
BOT = person("robot", "dba", is_bot=True)

DBA = {"conditions": [{"attribute": "group", "op": "is", "values": ["dba"]}]}
ONCALL = {"conditions": [{"attribute": "oncall", "op": "is", "values": ["sre-primary"]}]}
DBA_OR_OWNER = {
    "match": "any",
    "conditions": [
        {"attribute": "group", "op": "is", "values": ["dba"]},
        {"attribute": "owner", "op": "is", "values": [True]},
    ],
}
TIERS = {
    "every": "30m",
    "tiers": [
        {"conditions": [{"attribute": "user", "values": ["cto@example.com"]}]},
        {"conditions": [{"attribute": "user", "values": ["UVP"]}]},
    ],
}


def approval(combine: str = "any_of", *groups: dict[str, Any], **extra: Any) -> Approval:
    return Approval.model_validate(
        {"type": "approvers", "combine": combine, "groups": list(groups) or [DBA, ONCALL], **extra}
    )


ANY_OF = approval("any_of")
ALL_OF = approval("all_of")
ALL_OF_DISTINCT = approval("all_of", distinct_approvers=True)
ESCALATING = approval("any_of", DBA, escalation=TIERS)
ALL_OF_ESCALATING = approval("all_of", DBA, ONCALL, escalation=TIERS)
OWNERS = approval("any_of", DBA_OR_OWNER)
OWNER_TIER = approval("any_of", DBA, escalation={
    "every": "30m", "tiers": [{"conditions": [{"attribute": "owner", "op": "is", "values": [True]}]}]})
AUTOMATIC = Approval()

ELIGIBILITY: list[Any] = [
    # (description, approval, approver, kwargs, expected group ids)
    ("any_of: member of group 0", ANY_OF, DANA, {}, {0}),
    ("any_of: member of group 1", ANY_OF, OSCAR, {}, {1}),
    ("any_of: member of both groups", ANY_OF, BOTH, {}, {0, 1}),
    ("any_of: member of neither group", ANY_OF, NOBODY, {}, set()),
    ("all_of: member of both groups is in both", ALL_OF, BOTH, {}, {0, 1}),
    ("all_of distinct: membership does not depend on distinctness", ALL_OF_DISTINCT, BOTH, {}, {0, 1}),
    ("the requester never approves their own request", ANY_OF, ALICE, {}, set()),
    ("the requester, known by Slack id only", ANY_OF, ALICE, {"requester": Identity("UALICE", None)}, set()),
    ("a grantee never approves", ANY_OF, GRACE, {"grantees": (GRACE,)}, set()),
    ("one of several grantees never approves", ANY_OF, GRACE, {"grantees": (NOBODY, GRACE)}, set()),
    (
        "the requester may approve when no_self_approval is off",
        ANY_OF,
        ALICE,
        {"no_self_approval": False},
        {0},
    ),
    (
        "a grantee may approve when no_self_approval is off",
        ANY_OF,
        GRACE,
        {"grantees": (GRACE,), "no_self_approval": False},
        {0},
    ),
    ("a deactivated user never approves", ANY_OF, GONE, {}, set()),
    ("a bot never approves", ANY_OF, BOT, {}, set()),
    ("an automatic approval has no approvers", AUTOMATIC, DANA, {}, set()),
    ("tier 1 member before escalation", ESCALATING, CTO, {"tiers_reached": 0}, set()),
    ("tier 1 member once tier 1 is reached", ESCALATING, CTO, {"tiers_reached": 1}, {TIER_BASE}),
    ("tier 2 member when only tier 1 is reached", ESCALATING, VP, {"tiers_reached": 1}, set()),
    ("tier 2 member once tier 2 is reached", ESCALATING, VP, {"tiers_reached": 2}, {TIER_BASE + 1}),
    ("tiers accumulate: tier 1 stays eligible at tier 2", ESCALATING, CTO, {"tiers_reached": 2}, {TIER_BASE}),
    ("reaching past the last tier changes nothing", ESCALATING, VP, {"tiers_reached": 9}, {TIER_BASE + 1}),
    ("group members stay eligible after escalation", ESCALATING, DANA, {"tiers_reached": 2}, {0}),
    (
        "a tier member who requested never approves",
        ESCALATING,
        CTO,
        {"requester": CTO, "tiers_reached": 1},
        set(),
    ),
    (
        "owner of the request's integration",
        OWNERS,
        OWNER,
        {"owned_integrations": frozenset({"prod-postgres"})},
        {0},
    ),
    ("owner of another integration", OWNERS, OWNER, {"owned_integrations": frozenset({"deploy"})}, set()),
    ("owner, request without integrations", OWNERS, OWNER, {}, set()),
    (
        "a dba in an owner-or-dba group",
        OWNERS,
        DANA,
        {"owned_integrations": frozenset({"prod-postgres"})},
        {0},
    ),
    (
        "an owner in an escalation tier, once it is reached",
        OWNER_TIER,
        OWNER,
        {"owned_integrations": frozenset({"prod-postgres"}), "tiers_reached": 1},
        {TIER_BASE},
    ),
    (
        "an owner of another integration in an escalation tier",
        OWNER_TIER,
        OWNER,
        {"owned_integrations": frozenset({"deploy"}), "tiers_reached": 1},
        set(),
    ),
    ("no tier is reached unless said so", OWNER_TIER, OWNER, {"owned_integrations": frozenset({"prod-postgres"})},
     set()),
    (
        "owner = false matches non-owners",
        approval("any_of", {"conditions": [{"attribute": "owner", "values": [False]}]}),
        NOBODY,
        {"owned_integrations": frozenset({"prod-postgres"})},
        {0},
    ),
]


@pytest.mark.parametrize(
    ("rule", "approver", "kwargs", "expected"), [pytest.param(*c[1:], id=c[0]) for c in ELIGIBILITY]
)
def test_eligible_groups(
    rule: Approval, approver: Identity, kwargs: dict[str, Any], expected: set[int]
) -> None:
    arguments: dict[str, Any] = {"requester": ALICE, **kwargs}
    assert eligible_groups(rule, approver, **arguments) == frozenset(expected)


# --- on-call approvers are eligible only during their shift (checked when the button is pressed) ------------

DIRECTORY = Directory.model_validate(
    {
        "oncall": [
            {
                "schedule": "sre-primary",
                "timezone": "Europe/Berlin",
                # 2026-01-05 is a Monday; weekly hand-over at 09:00 Berlin time (08:00 UTC in winter).
                "rotation": {
                    "every": "7d",
                    "starts": "2026-01-05T09:00",
                    "members": ["oscar@example.com", "UPAT"],
                },
            }
        ]
    }
)
INDEX = DirectoryIndex(DIRECTORY)

ONCALL_CASES: list[Any] = [
    # (description, who, moment (UTC), expected groups)
    ("before the rotation starts", "oscar@example.com", "2026-01-05T07:59:59", set()),
    ("first minute of his shift", "oscar@example.com", "2026-01-05T08:00:00", {1}),
    ("during his shift", "oscar@example.com", "2026-01-09T23:00:00", {1}),
    ("last second of his shift", "oscar@example.com", "2026-01-12T07:59:59", {1}),
    ("after the hand-over", "oscar@example.com", "2026-01-12T08:00:00", set()),
    ("the next member after the hand-over", "UPAT", "2026-01-12T08:00:00", {1}),
    ("the next member before her shift", "UPAT", "2026-01-11T12:00:00", set()),
    ("his next shift two weeks later", "oscar@example.com", "2026-01-19T08:00:00", {1}),
    # 2026-07-06 is 26 weeks on: Oscar's turn again, at 09:00 Berlin summer time = 07:00 UTC.
    ("summer: his shift starts at 09:00 Berlin (07:00 UTC)", "oscar@example.com", "2026-07-06T07:00:00", {1}),
    ("summer: one second earlier it is not his", "oscar@example.com", "2026-07-06T06:59:59", set()),
    ("summer: one second earlier it is hers", "UPAT", "2026-07-06T06:59:59", {1}),
]


@pytest.mark.parametrize(("who", "moment", "expected"), [pytest.param(*c[1:], id=c[0]) for c in ONCALL_CASES])
def test_an_oncall_approver_is_eligible_only_during_the_shift(
    who: str, moment: str, expected: set[int]
) -> None:
    with freeze_time(moment):
        now = datetime.now(UTC)
        email = who if "@" in who else None
        slack_id = None if "@" in who else who
        approver = INDEX.build_identity(slack_id=slack_id, email=email, now=now)
        assert eligible_groups(ANY_OF, approver, requester=ALICE) == frozenset(expected)


# --- the state of a request from the votes cast so far ------------------------------------------------------


def approve(who: Identity, *groups: int) -> Vote:
    return Vote(who.key, "approve", frozenset(groups))


def deny(who: Identity, *groups: int) -> Vote:
    return Vote(who.key, "deny", frozenset(groups))


STATES: list[Any] = [
    # (description, approval, votes, expected state)
    ("automatic is approved at once", AUTOMATIC, [], ApprovalState("approved")),
    ("any_of: no votes", ANY_OF, [], ApprovalState("pending", waiting_for=(0, 1))),
    (
        "any_of: one approval from group 0",
        ANY_OF,
        [approve(DANA, 0)],
        ApprovalState("approved", decided_by=("UDANA",)),
    ),
    (
        "any_of: one approval from group 1",
        ANY_OF,
        [approve(OSCAR, 1)],
        ApprovalState("approved", decided_by=("UOSCAR",)),
    ),
    ("all_of: group 0 only", ALL_OF, [approve(DANA, 0)], ApprovalState("pending", (1,), ("UDANA",))),
    ("all_of: group 1 only", ALL_OF, [approve(OSCAR, 1)], ApprovalState("pending", (0,), ("UOSCAR",))),
    (
        "all_of: one from each group",
        ALL_OF,
        [approve(DANA, 0), approve(OSCAR, 1)],
        ApprovalState("approved", decided_by=("UDANA", "UOSCAR")),
    ),
    (
        "all_of: two approvals from the same group",
        ALL_OF,
        [approve(DANA, 0), approve(DREW, 0)],
        ApprovalState("pending", (1,), ("UDANA",)),
    ),
    (
        "all_of: one person in both groups satisfies both without distinct_approvers",
        ALL_OF,
        [approve(BOTH, 0, 1)],
        ApprovalState("approved", decided_by=("UBEA",)),
    ),
    (
        "all_of distinct: one person in both groups satisfies only one",
        ALL_OF_DISTINCT,
        [approve(BOTH, 0, 1)],
        ApprovalState("pending", (1,), ("UBEA",)),
    ),
    (
        "all_of distinct: the person in both groups and a group-1 member",
        ALL_OF_DISTINCT,
        [approve(BOTH, 0, 1), approve(OSCAR, 1)],
        ApprovalState("approved", decided_by=("UBEA", "UOSCAR")),
    ),
    (
        "all_of distinct: the person in both groups then a group-0 member (reassigned)",
        ALL_OF_DISTINCT,
        [approve(BOTH, 0, 1), approve(DANA, 0)],
        ApprovalState("approved", decided_by=("UDANA", "UBEA")),
    ),
    (
        "all_of distinct: a group-0 member then the person in both groups",
        ALL_OF_DISTINCT,
        [approve(DANA, 0), approve(BOTH, 0, 1)],
        ApprovalState("approved", decided_by=("UDANA", "UBEA")),
    ),
    (
        "all_of distinct: two people of group 0 leave group 1 waiting",
        ALL_OF_DISTINCT,
        [approve(DANA, 0), approve(DREW, 0)],
        ApprovalState("pending", (1,), ("UDANA",)),
    ),
    (
        "all_of distinct: three groups, assignment needs a chain of reassignments",
        approval(
            "all_of",
            DBA,
            ONCALL,
            {"conditions": [{"attribute": "group", "values": ["sec"]}]},
            distinct_approvers=True,
        ),
        [approve(DANA, 0, 1), approve(OSCAR, 1, 2), approve(DREW, 0)],
        ApprovalState("approved", decided_by=("UDREW", "UDANA", "UOSCAR")),
    ),
    ("a deny from group 0 denies", ANY_OF, [deny(DANA, 0)], ApprovalState("denied", decided_by=("UDANA",))),
    (
        "all_of: a deny after an approval denies",
        ALL_OF,
        [approve(DANA, 0), deny(OSCAR, 1)],
        ApprovalState("denied", decided_by=("UOSCAR",)),
    ),
    (
        "all_of: a deny by somebody in the already satisfied group denies",
        ALL_OF,
        [approve(DANA, 0), deny(DREW, 0)],
        ApprovalState("denied", decided_by=("UDREW",)),
    ),
    (
        "a deny by a reached tier denies",
        ESCALATING,
        [deny(CTO, TIER_BASE)],
        ApprovalState("denied", decided_by=("UCTO",)),
    ),
    (
        "all_of distinct: the same person's votes count once",
        ALL_OF_DISTINCT,
        [approve(BOTH, 0), approve(BOTH, 1)],
        ApprovalState("pending", (1,), ("UBEA",)),
    ),
    (
        "votes of people eligible nowhere count for nothing",
        ANY_OF,
        [deny(NOBODY), approve(ALICE)],
        ApprovalState("pending", (0, 1)),
    ),
    (
        "a tier approval approves outright under any_of",
        ESCALATING,
        [approve(CTO, TIER_BASE)],
        ApprovalState("approved", decided_by=("UCTO",)),
    ),
    (
        "a tier approval approves outright under all_of",
        ALL_OF_ESCALATING,
        [approve(DANA, 0), approve(VP, TIER_BASE + 1)],
        ApprovalState("approved", decided_by=("UVP",)),
    ),
    (
        "all_of: an approval from the first tier approves outright",
        ALL_OF_ESCALATING,
        [approve(DANA, 0), approve(CTO, TIER_BASE)],
        ApprovalState("approved", decided_by=("UCTO",)),
    ),
    (
        "all_of with tiers: group approvals alone still need every group",
        ALL_OF_ESCALATING,
        [approve(DANA, 0)],
        ApprovalState("pending", (1,), ("UDANA",)),
    ),
]


@pytest.mark.parametrize(("rule", "votes", "expected"), [pytest.param(*c[1:], id=c[0]) for c in STATES])
def test_approval_state(rule: Approval, votes: list[Vote], expected: ApprovalState) -> None:
    assert approval_state(rule, votes) == expected


@pytest.mark.parametrize(
    ("group_id", "expected"),
    [
        pytest.param(0, "approver group 1", id="first group"),
        pytest.param(1, "approver group 2", id="second group"),
        pytest.param(TIER_BASE, "escalation tier 1", id="first tier"),
        pytest.param(TIER_BASE + 4, "escalation tier 5", id="last tier"),
    ],
)
def test_group_label(group_id: int, expected: str) -> None:
    assert group_label(ALL_OF_ESCALATING, group_id) == expected


# --- properties ---------------------------------------------------------------------------------------------

_people = st.sampled_from([f"U{i}" for i in range(5)])
_groups = st.frozensets(st.integers(min_value=0, max_value=2), max_size=3)
_approvals = st.lists(
    st.builds(lambda who, groups: Vote(who, "approve", groups), _people, _groups), max_size=6
)
THREE_GROUPS = [DBA, ONCALL, {"conditions": [{"attribute": "group", "values": ["sec"]}]}]


@given(_approvals)
def test_distinct_approvers_is_never_easier_than_shared(votes: list[Vote]) -> None:
    """Approved with distinct approvers ⇒ approved without; and all_of ⇒ any_of."""
    distinct = approval_state(approval("all_of", *THREE_GROUPS, distinct_approvers=True), votes)
    shared = approval_state(approval("all_of", *THREE_GROUPS), votes)
    anyone = approval_state(approval("any_of", *THREE_GROUPS), votes)
    if distinct.status == "approved":
        assert shared.status == "approved"
    if shared.status == "approved":
        assert anyone.status == "approved"
    assert set(distinct.waiting_for) >= set(shared.waiting_for)


@given(_approvals)
def test_distinct_approval_means_a_different_person_per_group(votes: list[Vote]) -> None:
    state = approval_state(approval("all_of", *THREE_GROUPS, distinct_approvers=True), votes)
    voters = {v.approver for v in votes if v.groups}
    groups_covered = set().union(*(v.groups for v in votes)) if votes else set()
    if state.status == "approved":
        assert len(state.decided_by) == 3 and len(voters) >= 3
    else:
        assert state.waiting_for
    assert set(state.waiting_for) >= {0, 1, 2} - groups_covered


@given(_approvals, _people, st.integers(min_value=0, max_value=2))
def test_any_eligible_deny_denies(votes: list[Vote], who: str, group: int) -> None:
    for rule in (ANY_OF, ALL_OF, ALL_OF_DISTINCT):
        with_deny = [*votes, Vote(who, "deny", frozenset({group}))]
        assert approval_state(rule, with_deny).status == "denied"
