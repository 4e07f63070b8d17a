"""Approval state (SPEC §5): ANY OF / ALL OF approver groups, distinct approvers, self-approval, tiers.

An approver's vote records which groups the approver satisfied *when the button was pressed*; the state of a
request is a pure function of the flow's approval rules and those votes. Escalation tiers accumulate: a tier
that has been reached makes its members eligible, and an approval by a tier member approves the request
outright (escalating is asking a higher authority to decide alone).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from policy.conditions import matches
from policy.config import Approval
from policy.identity import Identity

Decision = Literal["approve", "deny"]
TIER_BASE = 100  # group ids >= TIER_BASE are escalation tiers (TIER_BASE + tier index)


@dataclass(frozen=True, slots=True)
class Vote:
    approver: str  # a stable key of the approver (Slack id)
    decision: Decision
    groups: frozenset[int]


@dataclass(frozen=True, slots=True)
class ApprovalState:
    status: Literal["approved", "denied", "pending"]
    waiting_for: tuple[int, ...] = ()  # indexes of approver groups still unsatisfied
    decided_by: tuple[str, ...] = ()


def group_label(approval: Approval, group_id: int) -> str:
    if group_id >= TIER_BASE:
        return f"escalation tier {group_id - TIER_BASE + 1}"
    return f"approver group {group_id + 1}"


def eligible_groups(
    approval: Approval,
    approver: Identity,
    *,
    requester: Identity,
    grantees: Sequence[Identity] = (),
    owned_integrations: frozenset[str] = frozenset(),
    tiers_reached: int = 0,
    no_self_approval: bool = True,
) -> frozenset[int]:
    """The approver groups (and reached tiers) ``approver`` belongs to now; empty = not eligible."""
    if approval.type != "approvers" or approver.deactivated or approver.is_bot:
        return frozenset()
    if no_self_approval and (
        approver.same_person(requester) or any(approver.same_person(g) for g in grantees)
    ):
        return frozenset()
    ids = {
        index
        for index, group in enumerate(approval.groups)
        if matches(group, approver, owned_integrations=owned_integrations)
    }
    if approval.escalation is not None:
        for tier in range(min(tiers_reached, len(approval.escalation.tiers))):
            if matches(approval.escalation.tiers[tier], approver, owned_integrations=owned_integrations):
                ids.add(TIER_BASE + tier)
    return frozenset(ids)


def approval_state(approval: Approval, votes: Iterable[Vote]) -> ApprovalState:
    """Approved, denied or pending (with the groups still waiting) from the votes cast so far."""
    votes = [v for v in votes if v.groups]
    if approval.type == "automatic":
        return ApprovalState("approved")
    denials = [v for v in votes if v.decision == "deny"]
    if denials:
        return ApprovalState("denied", decided_by=(denials[0].approver,))
    approvals = _merged([v for v in votes if v.decision == "approve"])
    tier_approval = next((v for v in approvals if any(g >= TIER_BASE for g in v.groups)), None)
    if tier_approval is not None:
        return ApprovalState("approved", decided_by=(tier_approval.approver,))
    group_ids = range(len(approval.groups))
    if approval.combine == "any_of":
        if approvals:
            return ApprovalState("approved", decided_by=(approvals[0].approver,))
        return ApprovalState("pending", waiting_for=tuple(group_ids))
    if approval.distinct_approvers:
        assignment = _distinct_assignment(approvals, list(group_ids))
        waiting = tuple(g for g in group_ids if g not in assignment)
        by = tuple(dict.fromkeys(assignment[g] for g in group_ids if g in assignment))
    else:
        covered: dict[int, str] = {}
        for vote in approvals:
            for g in vote.groups:
                covered.setdefault(g, vote.approver)
        waiting = tuple(g for g in group_ids if g not in covered)
        by = tuple(dict.fromkeys(covered[g] for g in group_ids if g in covered))
    if waiting:
        return ApprovalState("pending", waiting_for=waiting, decided_by=by)
    return ApprovalState("approved", decided_by=by)


def _merged(approvals: list[Vote]) -> list[Vote]:
    """One vote per approver (their groups united), in the order of their first vote.

    The store keeps one vote per approver; merging here keeps ``distinct_approvers`` sound for any input, so a
    person can never count as two different approvers.
    """
    groups: dict[str, frozenset[int]] = {}
    for vote in approvals:
        groups[vote.approver] = groups.get(vote.approver, frozenset()) | vote.groups
    return [Vote(approver, "approve", ids) for approver, ids in groups.items()]


def _distinct_assignment(approvals: list[Vote], groups: list[int]) -> dict[int, str]:
    """Maximum matching of groups to distinct approvers (augmenting paths; groups are few)."""
    by_group: dict[int, str] = {}

    def augment(vote: Vote, seen: set[int]) -> bool:
        for g in sorted(vote.groups):
            if g not in groups or g in seen:
                continue
            seen.add(g)
            holder = by_group.get(g)
            holder_vote = next((v for v in approvals if v.approver == holder), None)
            if holder is None or (holder_vote is not None and augment(holder_vote, seen)):
                by_group[g] = vote.approver
                return True
        return False

    for vote in approvals:
        augment(vote, set())
    return by_group
