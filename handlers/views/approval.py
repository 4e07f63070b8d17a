"""The approver DM (Approve/Deny), its decided form, the reason modal (callback_id ``decision_reason``)."""

from __future__ import annotations

import json
from typing import Any

from bot.lifecycle.records import RequestRecord
from handlers.views.common import (
    Block,
    Ids,
    actions,
    button,
    context,
    escape,
    hours,
    plain,
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


def outcome(record: RequestRecord) -> str:
    """The request's outcome in words, told apart where the state alone would mislead."""
    grant_states = {g.state for g in record.grants}
    if record.state == "timed_out" and "timed_out" in grant_states:
        return "⌛ Approved, but the grantee never confirmed with MFA"
    if record.state == "granting" and "awaiting_mfa" in grant_states:
        return "✅ Approved — waiting for the grantee to confirm with MFA"
    return OUTCOME.get(record.state, record.state)


def summary(record: RequestRecord) -> list[Block]:
    """Who asks, for whom, what, how long, why, which flow, risk, tier."""
    grantees = ", ".join(user(g) for g in record.grantee_ids)
    names: list[str] = []
    for name in record.resource_names[:20]:  # within a budget, so the why and the duration always show
        shown = f"`{escape(name, 200)}`"
        if names and sum(len(n) + 2 for n in names) + len(shown) > 1200:
            break
        names.append(shown)
    what = ", ".join(names)
    hidden = len(record.resource_names) - len(names)
    more = f" and {hidden} more" if hidden else ""
    lines = [
        f"*{user(record.requester_id)}* requests *{escape(record.permission, 100)}* on {what}{more}"
        + ("" if record.grantee_ids == (record.requester_id,) else f" for {grantees}"),
        f"*Duration:* {hours(record.duration)}   *Flow:* {escape(record.flow_name, 100)}   "
        f"*Risk:* {escape(record.risk, 20)}"
        + (f"   *Tier:* {record.escalation_tier}" if record.escalation_tier else ""),
        f"*Why:* {escape(record.justification) or '_no justification given_'}",
    ]
    return [section("\n".join(lines)), context(f"Request #{record.id} · submitted {when(record.created_at)}")]


def approval_message(record: RequestRecord) -> dict[str, Any]:
    """The DM an approver gets while the request is pending."""
    blocks = [section(f"*Access request #{record.id}* needs your decision"), *summary(record)]
    approvals = [v for v in record.votes if v.decision == "approve"]
    if approvals:
        blocks.append(context("Approved so far by " + ", ".join(user(v.approver_id) for v in approvals)))
    value = str(record.id)
    blocks.append(
        actions(
            f"decide_{record.id}",
            button("Approve", Ids.APPROVE, value, "primary"),
            button("Deny", Ids.DENY, value, "danger"),
        )
    )
    return {
        "text": f"Access request #{record.id} from {record.requester_id} needs your decision",
        "blocks": blocks,
    }


def decided_message(record: RequestRecord) -> dict[str, Any]:
    """The same DM after the decision: no buttons; the outcome, who, when, the reason and until when."""
    if record.state == "pending":
        return approval_message(record)
    result = outcome(record)
    lines = [f"*{result}*"]
    if record.decided_by:
        lines.append(f"by {user(record.decided_by)} {when(record.decided_at)}")
    elif record.decided_at:
        lines.append(when(record.decided_at))
    if record.decision_reason:
        lines.append(f"*Reason:* {escape(record.decision_reason, 124)}")
    if record.state in ("active", "granting") and record.expires_at:
        lines.append(f"*Until:* {when(record.expires_at)}")
    blocks = [section(f"*Access request #{record.id}*"), *summary(record), section("\n".join(lines))]
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
