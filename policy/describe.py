"""One-line, deterministic descriptions of flows and condition sets for people (SPEC §3 ``description``).

``describe_flow`` is what pickers and App Home show for a flow whose ``description`` is empty, e.g.::

    prod-db-read: members of group sre or backend can request read_only, read_write on prod-postgres
    databases (any), bundle billing-debug, scope eu-prod (read_only) for up to 4h, approved by any of:
    group dba or owner; on-call sre-primary (escalates to 1 tier every 30m), MFA, justification required,
    Mon–Fri 08:00–20:00 Europe/Berlin

(on one line). It is built only from the flow and the configuration, in their order, so it is stable.
"""

from __future__ import annotations

import json

from policy.config import (
    Approval,
    BundleTarget,
    Condition,
    ConditionSet,
    Config,
    Flow,
    IntegrationTarget,
    ResourceSelector,
    ScopeTarget,
    Target,
)
from policy.durations import format_duration
from policy.windows import describe_window

_OP_WORDS = {
    "is": "is",
    "is_not": "is not",
    "contains": "contains",
    "does_not_contain": "does not contain",
    "starts_with": "starts with",
    "ends_with": "ends with",
}
# Negative ops over several values read "none of": `group is none of a, b`.
_NONE_OF_WORDS = {"is_not": "is none of", "does_not_contain": "contains none of"}
# How an `is` condition on a built-in attribute reads in a flow description.
_SHORT_LABELS = {"group": "group", "oncall": "on-call", "manager": "reports to", "user": ""}
_REQUEST_FOR_WORDS = {
    "themselves": "themselves",
    "direct_reports": "their direct reports",
    "others": "others",
}


def _value(value: str) -> str:
    """A condition value as text; quoted when it is empty or could be misread (spaces, commas)."""
    if not value or any(ch.isspace() or not ch.isprintable() or ch in ',;"' for ch in value):
        return json.dumps(value, ensure_ascii=False)
    return value


def _alternatives(items: list[str], word: str = "or") -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def describe_condition(condition: Condition) -> str:
    """``group is sre or backend``, ``department is not eng``, ``email ends with @example.com``."""
    values = [_value(v) for v in condition.values]
    if len(values) > 1 and condition.op in _NONE_OF_WORDS:
        return f"{condition.attribute} {_NONE_OF_WORDS[condition.op]} {', '.join(values)}"
    return f"{condition.attribute} {_OP_WORDS[condition.op]} {_alternatives(values)}"


def describe_conditions(cs: ConditionSet) -> str:
    """``group is sre or backend and department is eng`` (``or`` between conditions for ``match: any``)."""
    joiner = " and " if cs.match == "all" else " or "
    return joiner.join(describe_condition(c) for c in cs.conditions)


def _short_condition(condition: Condition) -> str:
    """The terse form used inside flow descriptions: ``group dba``, ``owner``, ``on-call sre-primary``."""
    if condition.op == "is":
        values = [_value(v) for v in condition.values]
        if condition.attribute == "owner" and {v.lower() for v in condition.values} == {"true"}:
            return "owner"
        if condition.attribute == "owner" and {v.lower() for v in condition.values} == {"false"}:
            return "not owner"
        if condition.attribute in _SHORT_LABELS:
            label = _SHORT_LABELS[condition.attribute]
            return f"{label} {_alternatives(values)}".strip()
    return describe_condition(condition)


def _short_conditions(cs: ConditionSet) -> str:
    joiner = " and " if cs.match == "all" else " or "
    return joiner.join(_short_condition(c) for c in cs.conditions)


def _who(cs: ConditionSet) -> str:
    """The requestors: ``members of group sre or backend``, ``alice@example.com`` or ``users where …``."""
    if len(cs.conditions) == 1 and cs.conditions[0].op == "is":
        condition = cs.conditions[0]
        values = _alternatives([_value(v) for v in condition.values])
        if condition.attribute == "group":
            return f"members of group {values}"
        if condition.attribute == "user":
            return values
        if condition.attribute == "oncall":
            return f"whoever is on call for {values}"
    return f"users where {describe_conditions(cs)}"


def _selector(selector: ResourceSelector) -> str:
    if selector.names is not None:
        return ", ".join(_value(n) for n in selector.names)
    if selector.except_ is not None:
        return "all except " + ", ".join(_value(n) for n in selector.except_)
    if selector.tags is not None:
        return ", ".join(f"{k}={_value(v)}" for k, v in selector.tags.items())
    if selector.query is not None:
        return f"query {selector.query}"
    return "any"


def _plural(word: str) -> str:
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    return word + "s"


def describe_target(target: Target) -> str:
    """``read_only on prod-postgres databases (billing)``, ``bundle billing-debug``, ``scope eu-prod``."""
    if isinstance(target, IntegrationTarget):
        kind = _plural(target.resource_type) if target.resource_type else "resources"
        permissions = ", ".join(target.permissions)
        return f"{permissions} on {target.integration} {kind} ({_selector(target.resources)})"
    if isinstance(target, BundleTarget):
        return f"bundle {target.bundle}"
    assert isinstance(target, ScopeTarget)
    suffix = f" ({', '.join(target.permissions)})" if target.permissions else ""
    return f"scope {target.access_scope}{suffix}"


def _approval(approval: Approval) -> str:
    if approval.type == "automatic":
        return "approved automatically"
    combine = "any of" if approval.combine == "any_of" else "all of"
    text = f"approved by {combine}: " + "; ".join(_short_conditions(g) for g in approval.groups)
    if approval.distinct_approvers:
        text += " (each by a different person)"
    if approval.escalation:
        tiers = len(approval.escalation.tiers)
        every = format_duration(approval.escalation.every)
        text += f" (escalates to {tiers} tier{'s' if tiers != 1 else ''} every {every})"
    return text


def _requirements(flow: Flow) -> list[str]:
    settings = flow.settings
    required = [
        name
        for name, on in (
            ("MFA", settings.require_mfa),
            ("justification", settings.require_justification),
            ("approver reason", settings.require_approver_reason and flow.approval.type == "approvers"),
        )
        if on
    ]
    parts = [", ".join(required) + " required"] if required else []
    if not settings.no_self_approval and flow.approval.type == "approvers":
        parts.append("self-approval allowed")
    return parts


def _on_behalf(flow: Flow) -> str | None:
    others = [_REQUEST_FOR_WORDS[r] for r in flow.request_for if r != "themselves"]
    if not others:
        return None
    prefix = "also" if "themselves" in flow.request_for else "only"
    return f"{prefix} for {_alternatives(others)}"


def describe_flow(flow: Flow, config: Config) -> str:
    """The flow's ``description``, or a generated one-line summary when it is empty."""
    if flow.description.strip():
        return " ".join(flow.description.split())
    targets = ", ".join(describe_target(t) for t in flow.targets)
    head = f"{flow.name}" + (f" (space {flow.space})" if flow.space else "")
    if flow.type == "automatic":
        parts = [f"{head}: {_who(flow.requestors)} hold {targets} while they match"]
    else:
        duration = (
            "indefinitely" if flow.grant_for is None else f"for up to {format_duration(flow.grant_for)}"
        )
        parts = [f"{head}: {_who(flow.requestors)} can request {targets} {duration}"]
        on_behalf = _on_behalf(flow)
        if on_behalf:
            parts.append(on_behalf)
        if flow.extend.max_times:
            times = flow.extend.max_times
            parts.append(
                f"extendable {times} time{'s' if times != 1 else ''} by {format_duration(flow.extend.each)}"
            )
        if flow.settings.break_glass:
            reviewers = _approval(flow.approval).replace("approved by", "reviewed afterwards by", 1)
            parts.append("break-glass: granted at once without approval"
                         + ("" if flow.approval.type == "automatic" else f", {reviewers} (Acknowledge / Revoke now)"))
        else:
            parts.append(_approval(flow.approval))
        if flow.approval.channel:
            parts.append(f"asked in channel {flow.approval.channel}"
                         + (" only" if flow.approval.notify == "channel" else " and by DM"))
        parts.extend(_requirements(flow))
    if flow.when != "always":
        parts.append(describe_window(flow.when, config.timezone))
    return " ".join(", ".join(parts).split())


def describe_labels(flow: Flow) -> str:
    """``labels: prod, db`` (in the order written), or empty when the flow has none."""
    return f"labels: {', '.join(flow.labels)}" if flow.labels else ""


def has_label(flow: Flow, label: str) -> bool:
    """Whether the flow carries ``label`` (case-insensitive): what ``/access flows LABEL`` filters on."""
    wanted = label.strip().casefold()
    return any(item.casefold() == wanted for item in flow.labels)
