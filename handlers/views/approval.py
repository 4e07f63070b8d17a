"""The approver DM (Approve/Deny), its channel twin, its decided form, the break-glass review, the reason modal
(callback_id ``decision_reason``) and the "Show all" list of a request's resources. Pure.

User text (the justification, reasons) is always shown as a quoted plain-text block (:func:`quote`), never as
mrkdwn, so it can neither mention, link nor pose as one of the message's own fields.
"""

from __future__ import annotations

import json
from typing import Any

from bot.lifecycle.records import RequestRecord
from handlers.views.common import (
    MAX_TEXT,
    Block,
    Ids,
    actions,
    button,
    context,
    escape,
    hours,
    listed,
    names_within,
    plain,
    quote,
    section,
    user,
    when,
)

OUTCOME = {
    "approved": "✅ Approved",
    "granting": "✅ Approved",
    "active": "✅ Approved — access is active",
    "expired": "✅ Approved — access has ended",
    "revoked": "✅ Approved — access was revoked",
    "failed": "⚠️ Approved, but granting failed",
    "denied": "⛔ Denied",
    "canceled": "🚫 Canceled by the requester",
    "timed_out": "⌛ Timed out without a decision",
    "pending": "⏳ Waiting for approval",
}
BREAK_GLASS_OUTCOME = {
    "granting": "🚨 Break-glass — being granted without approval",
    "active": "🚨 Break-glass — access is active, granted without approval",
    "expired": "🚨 Break-glass — access has ended",
    "revoked": "🚨 Break-glass — access was revoked",
}


def outcome(record: RequestRecord) -> str:
    """The request's outcome in words, told apart where the state alone would mislead."""
    grant_states = {g.state for g in record.grants}
    if record.break_glass and record.state in BREAK_GLASS_OUTCOME:
        return BREAK_GLASS_OUTCOME[record.state]
    if record.state == "timed_out" and "timed_out" in grant_states:
        return "⌛ Approved, but the grantee never confirmed with MFA"
    if record.state == "granting" and "awaiting_mfa" in grant_states:
        return "✅ Approved — waiting for the grantee to confirm with MFA"
    return OUTCOME.get(record.state, record.state)


def summary(record: RequestRecord) -> list[Block]:
    """Who asks, for whom, what, how long, which flow, labels, risk, tier; then why (quoted, inert)."""
    grantees = ", ".join(user(g) for g in record.grantee_ids[:20])
    shown, hidden = names_within(record.resource_names)
    what = listed(shown, hidden)
    facts = [f"*Duration:* {hours(record.duration) if record.duration else 'until revoked'}",
             f"*Flow:* {escape(record.flow_name, 100)}"]
    if record.labels:
        facts.append("*Labels:* " + ", ".join(escape(label, 40) for label in record.labels[:10]))
    if record.risk:
        facts.append(f"*Risk:* {escape(record.risk, 20)}")
    if record.escalation_tier:
        facts.append(f"*Tier:* {record.escalation_tier}")
    lines = [
        f"*{user(record.requester_id)}* requests *{escape(record.permission, 100)}* on {what}"
        + ("" if record.grantee_ids == (record.requester_id,) else f" for {grantees}"),
        "   ".join(facts),
    ]
    head = section("\n".join(lines))
    if hidden:
        head["accessory"] = button("Show all", Ids.SHOW_RESOURCES, str(record.id))
    why: list[Block] = (
        [section("*Why:*"), quote(record.justification)] if record.justification
        else [section("*Why:* _no justification given_")]
    )
    return [head, *why, context(f"Request #{record.id} · submitted {when(record.created_at)}")]


def _in_channel(recipient: str | None) -> bool:
    return bool(recipient) and str(recipient)[:1] in ("C", "G")


def approval_message(record: RequestRecord, recipient: str | None = None) -> dict[str, Any]:
    """The approval message while the request is pending: an approver's DM, or the flow's channel post."""
    if record.break_glass:
        return review_message(record, recipient)
    channel = _in_channel(recipient)
    asks = "needs a decision from an approver" if channel else "needs your decision"
    blocks = [section(f"*Access request #{record.id}* {asks}"), *summary(record)]
    approvals = [v for v in record.votes if v.decision == "approve"]
    if approvals:
        blocks.append(context("Approved so far by " + ", ".join(user(v.approver_id) for v in approvals)))
    value = str(record.id)
    blocks.append(actions(f"decide_{record.id}", button("Approve", Ids.APPROVE, value, "primary"),
                          button("Deny", Ids.DENY, value, "danger")))
    if channel:
        blocks.append(context("Only eligible approvers' clicks count here; anyone else is told so."))
    return {"text": f"Access request #{record.id} from {user(record.requester_id)} {asks}", "blocks": blocks}


def review_message(record: RequestRecord, recipient: str | None = None) -> dict[str, Any]:
    """A break-glass request, granted without approval, for the approvers to review (until one has)."""
    if not record.awaiting_review:
        return reviewed_message(record)
    text = (f"🚨 Break-glass: {user(record.requester_id)} took access without approval (request #{record.id}). "
            "Review it: acknowledge it, or revoke it now.")
    value = str(record.id)
    blocks = [section(f"*{text}*"), *summary(record),
              section(f"*Status:* {outcome(record)}"
                      + (f" until {when(record.expires_at)}" if record.expires_at else "")),
              actions(f"review_{record.id}", button("Acknowledge", Ids.ACKNOWLEDGE, value, "primary"),
                      button("Revoke now", Ids.REVIEW_REVOKE, value, "danger"))]
    return {"text": text, "blocks": blocks}


def reviewed_message(record: RequestRecord) -> dict[str, Any]:
    verdict = "✅ Acknowledged" if record.review_outcome == "acknowledged" else "⛔ Revoked at review"
    text = f"Break-glass request #{record.id}: {verdict} by {user(record.reviewed_by or '')} {when(record.reviewed_at)}"
    return {"text": text, "blocks": [section(f"*{text}*"), *summary(record), section(f"*Status:* {outcome(record)}")]}


def decided_message(record: RequestRecord) -> dict[str, Any]:
    """The same message after the decision: no buttons; the outcome, who, when, the reason and until when."""
    if record.break_glass:
        return review_message(record)
    if record.state == "pending":
        return approval_message(record)
    result = outcome(record)
    lines = [f"*{result}*"]
    if record.decided_by:
        lines.append(f"by {user(record.decided_by)} {when(record.decided_at)}")
    elif record.decided_at:
        lines.append(when(record.decided_at))
    if record.state in ("active", "granting") and record.expires_at:
        lines.append(f"*Until:* {when(record.expires_at)}")
    blocks = [section(f"*Access request #{record.id}*"), *summary(record), section("\n".join(lines))]
    if record.decision_reason:
        blocks += [section("*Reason:*"), quote(record.decision_reason)]
    return {"text": f"Access request #{record.id}: {result}", "blocks": blocks}


def reason_modal(request_id: int, decision: str) -> dict[str, Any]:
    verb = "Approve" if decision == "approve" else "Deny"
    return {
        "type": "modal",
        "callback_id": Ids.REASON_MODAL,
        "title": plain(f"{verb} #{request_id}", 24),
        "submit": plain(verb, 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps({"request_id": request_id, "decision": decision}),
        "blocks": [
            {
                "type": "input",
                "block_id": Ids.REASON,
                "label": plain("Reason"),
                "element": {"type": "plain_text_input", "action_id": Ids.REASON, "max_length": 124},
            }
        ],
    }


def parse_reason(view: dict[str, Any]) -> tuple[int, str, str]:
    """(request id, decision, reason) from a submitted reason modal."""
    meta = json.loads(view.get("private_metadata") or "{}")
    values = (view.get("state") or {}).get("values") or {}
    reason = ((values.get(Ids.REASON) or {}).get(Ids.REASON) or {}).get("value") or ""
    decision = "deny" if meta.get("decision") == "deny" else "approve"
    return int(meta["request_id"]), decision, reason


def resource_list_modal(record: RequestRecord) -> dict[str, Any]:
    """Every resource of a request ("Show all"), in sections of at most Slack's 3000 characters."""
    blocks: list[Block] = [section(f"*{escape(record.permission, 100)}* on {len(record.resource_keys)} "
                                   f"resource{'s' if len(record.resource_keys) != 1 else ''} (request #{record.id}):")]
    lines: list[str] = []
    for key in record.resource_keys:
        integration, kind, name = (key.split("/", 2) + ["", ""])[:3]
        line = f"• `{escape(name, 200)}` · {escape(kind, 40)} · {escape(integration, 80)}"
        if lines and sum(len(x) + 1 for x in lines) + len(line) > MAX_TEXT:
            blocks.append(section("\n".join(lines)))
            lines = []
        lines.append(line)
    if lines:
        blocks.append(section("\n".join(lines)))
    return {"type": "modal", "callback_id": Ids.RESOURCE_LIST_MODAL, "title": plain(f"Request #{record.id}", 24),
            "close": plain("Close", 24), "blocks": blocks[:100]}
