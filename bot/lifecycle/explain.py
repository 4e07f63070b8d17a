"""``accessbot explain``: which flows let a user request what, for how long, approved by whom."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.lifecycle.directory import ConfigDirectory
from bot.lifecycle.policy_holder import PolicyHolder
from policy.conditions import matches
from policy.config import ConditionSet, Config, Flow
from policy.describe import describe_conditions, describe_labels
from policy.durations import format_duration
from policy.windows import describe_window

MAX_LISTED = 20


def explain_user(config: Config, user: str, now: datetime, *, resource_text: str = "") -> str:
    holder = PolicyHolder.from_config(config)
    policy = holder.current
    directory = ConfigDirectory(holder)
    identity = directory.identity(user, now)
    everyone = directory.candidates(now)
    lines = [f"{identity.label()}: groups {', '.join(sorted(identity.groups)) or '-'}; "
             f"on call {', '.join(sorted(identity.oncall)) or '-'}; manager {identity.manager or '-'}"]
    flows = policy.usable_flows(identity, now)
    automatic = policy.usable_flows(identity, now, kind="automatic")
    if not flows and not automatic:
        lines.append("No flow lets this user request anything right now.")
    providers = {s.schedule: s.provider for s in config.directory.oncall if s.provider}
    needle = resource_text.lower()
    for compiled in [*flows, *automatic]:
        flow = compiled.flow
        offered: dict[str, set[str]] = {}
        for rule in compiled.rules:
            for resource in policy.catalog.candidates(rule):
                if needle and needle not in resource.name.lower():
                    continue
                perms = [p.name for p in policy.catalog.permissions_of(resource.integration)
                         if rule.allows(resource, p)]
                if perms:
                    offered.setdefault(f"{resource.integration}/{resource.name}", set()).update(perms)
        if needle and not offered:
            continue
        lines.append("")
        kind = "automatic flow (held while the user matches)" if flow.type == "automatic" else "self-serve flow"
        labels = describe_labels(flow)
        lines.append(f"flow {flow.name} — {kind}, {describe_window(flow.when, config.timezone)}"
                     + (f"; {labels}" if labels else ""))
        shown = [f"{key} ({', '.join(sorted(perms))})" for key, perms in sorted(offered.items())]
        lines.append(f"  resources: {', '.join(shown[:MAX_LISTED])}" + (
            f" … and {len(shown) - MAX_LISTED} more" if len(shown) > MAX_LISTED else ""))
        lines.append(f"  max duration: {format_duration(flow.grant_for)}"
                     + (" (the requester picks hours)" if flow.require_duration else "")
                     + (f"; extendable {flow.extend.max_times}× by {format_duration(flow.extend.each)}"
                        if flow.extend.max_times else ""))
        lines.append(f"  for: {', '.join(flow.request_for)}")
        needs = [n for n, on in (("MFA", flow.settings.require_mfa),
                                 ("justification", flow.settings.require_justification),
                                 ("approver reason", flow.settings.require_approver_reason)) if on]
        lines.append(f"  requires: {', '.join(needs) or 'nothing more'}")
        approval = flow.approval
        if approval.type == "automatic":
            lines.append("  approval: automatic" + (" (break-glass: granted at once)" if flow.settings.break_glass
                                                     else ""))
            continue
        combine = "any one of" if approval.combine == "any_of" else "one from each of"
        if flow.settings.break_glass:
            lines.append(f"  approval: BREAK-GLASS — granted at once, without approval; then reviewed by {combine} "
                         "these groups (Acknowledge / Revoke now); the audit channel is alerted; an unreviewed "
                         "grant escalates")
        else:
            lines.append(f"  approval: {combine} these groups"
                         + (" (different people)" if approval.distinct_approvers else ""))
        if approval.channel:
            lines.append(f"  asked in channel {approval.channel}"
                         + (" only (no DMs)" if approval.notify == "channel" else " and by DM"))
        owned = frozenset(i.name for i in config.integrations)

        def who(group: ConditionSet, flow: Flow = flow, owned: frozenset[str] = owned) -> str:
            people = [c.label() for c in everyone
                      if not (flow.settings.no_self_approval and c.same_person(identity))
                      and matches(group, c, owned_integrations=c.owner_of & owned)]
            read = _read_at_click(group, providers)
            if read:
                return ", ".join(people + [read])
            return ", ".join(people) or "nobody eligible right now"

        for index, group in enumerate(approval.groups):
            lines.append(f"    group {index + 1}: {describe_conditions(group)} → {who(group)}")
        if approval.escalation:
            for index, tier in enumerate(approval.escalation.tiers):
                lines.append(f"    after {format_duration(approval.escalation.every * (index + 1))}, tier "
                             f"{index + 1}: {describe_conditions(tier)} → {who(tier)}")
        lines.append(f"  unanswered requests time out after {format_duration(approval.pending_timeout)}")
    return "\n".join(lines)


def _read_at_click(group: ConditionSet, providers: Mapping[str, str]) -> str:
    """``whoever PagerDuty has on call for dba-oncall at the click``, for on-call read from an incident tool."""
    names = {"pagerduty": "PagerDuty", "opsgenie": "Opsgenie"}
    found = [f"whoever {names[providers[v]]} has on call for {v} at the click"
             for c in group.conditions if c.attribute == "oncall" and c.op == "is" for v in c.values if v in providers]
    return "; ".join(found)
