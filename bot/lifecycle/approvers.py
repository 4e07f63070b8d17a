"""Who may approve a request now (SPEC §5 Approval): eligibility checked against the directory as it is."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.lifecycle.directory import Candidates, IdentityProvider
from policy.approvals import eligible_groups
from policy.config import Flow
from policy.errors import Unapprovable
from policy.flows import FlowChoice
from policy.identity import Identity

MEMO_ENTRIES = 1024  # (approval rules, integrations, tier) answers kept per set of candidates


def approver_groups(
    flow: Flow, approver: Identity, requester: Identity, grantees: Sequence[Identity], integrations: set[str], *,
    tiers: int, self_allowed: bool = False,
) -> frozenset[int]:
    """The approver groups (and reached escalation tiers) of the flow this person counts for, now."""
    return eligible_groups(
        flow.approval, approver, requester=requester, grantees=grantees,
        owned_integrations=approver.owner_of & frozenset(integrations), tiers_reached=tiers,
        no_self_approval=flow.settings.no_self_approval and not self_allowed,
    )


def approvers_or_refuse(
    directory: IdentityProvider, flow: Flow, requester: Identity, grantees: Sequence[Identity], choice: FlowChoice,
    now: datetime, *, tiers: int,
) -> list[Identity]:
    """Who is asked to approve; refuses at once (``Unapprovable``, saying why) when nobody could."""
    integrations = {choice.permission.integration}
    eligible = eligible_approvers(directory, flow, requester, grantees, integrations, now, tiers=tiers)
    groups_with = {g for _, groups in eligible for g in groups}
    needed = set(range(len(flow.approval.groups)))
    if not eligible or (flow.approval.combine == "all_of" and not needed <= groups_with):
        missing = sorted(needed - groups_with)
        detail = (
            "nobody but you (or the grantee) is an approver"
            if eligible_approvers(directory, flow, requester, grantees, integrations, now,
                                  tiers=tiers, self_allowed=True)
            else "no active user matches approver group "
            + ", ".join(str(g + 1) for g in missing or needed)
        )
        raise Unapprovable(f"Nobody can approve this request under flow {flow.name}: {detail}. "
                           "Ask an admin to fix the approvers in accessbot.yml.")
    return [identity for identity, _ in eligible]


def eligible_approvers(
    directory: IdentityProvider, flow: Flow, requester: Identity, grantees: Sequence[Identity],
    integrations: set[str], now: datetime, *, tiers: int, self_allowed: bool = False,
) -> list[tuple[Identity, frozenset[int]]]:
    """Every directory candidate who counts for some approver group (or reached tier), with those groups.

    Who matches the flow's groups is worked out once per set of candidates (``Candidates.memo``: the same
    identities, the same approval rules, the same integrations and tiers give the same answer); only the
    requester and grantees are then taken out, per request.
    """
    candidates = directory.candidates(now)
    key = ("approvers", flow.approval.model_dump_json(), frozenset(integrations), tiers)
    matching: list[tuple[Identity, frozenset[int]]] | None = candidates.memo.get(key)
    if matching is None:
        with candidates.lock:
            matching = _matching(candidates, flow, integrations, tiers, key)
    if self_allowed or not flow.settings.no_self_approval:
        return list(matching)
    parties = [requester, *grantees]
    return [(c, groups) for c, groups in matching if not any(c.same_person(p) for p in parties)]


def _matching(candidates: Candidates, flow: Flow, integrations: set[str], tiers: int,
              key: tuple[object, ...]) -> list[tuple[Identity, frozenset[int]]]:
    """Everyone among ``candidates`` who counts for the flow's groups, self-approval aside (memoized)."""
    matching: list[tuple[Identity, frozenset[int]]] | None = candidates.memo.get(key)
    if matching is None:  # not computed meanwhile by the thread that held the lock
        matching = []
        seen: set[str] = set()
        for candidate in candidates:
            if candidate.key in seen:
                continue
            seen.add(candidate.key)
            groups = eligible_groups(flow.approval, candidate, requester=candidate, owned_integrations=(
                candidate.owner_of & frozenset(integrations)), tiers_reached=tiers, no_self_approval=False)
            if groups:
                matching.append((candidate, groups))
        if len(candidates.memo) >= MEMO_ENTRIES:
            candidates.memo.clear()
        candidates.memo[key] = matching
    return matching
