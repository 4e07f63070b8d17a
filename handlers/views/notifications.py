"""Renders an outbox notification (kind + the request as it is now) into a Slack message. Pure."""

from __future__ import annotations

from typing import Any

from bot.lifecycle.records import GrantRecord, Notice, RequestRecord
from handlers.views import grantee_mfa
from handlers.views.approval import OUTCOME, approval_message, decided_message, summary
from handlers.views.common import (
    Block,
    Ids,
    actions,
    button,
    context,
    escape,
    quote,
    resource_list,
    section,
    user,
    when,
)
from handlers.views.threads import audit_text, thread_text

PEOPLE_LISTED = 10


def _what(grant: GrantRecord | None, record: RequestRecord) -> str:
    if grant is not None:
        return f"*{escape(grant.permission, 100)}* on `{escape(grant.resource_name, 200)}`"
    return f"*{escape(record.permission, 100)}* on {resource_list(record.resource_names)}"


def _people(keys: list[str]) -> str:
    named = ", ".join(user(k) for k in keys[:PEOPLE_LISTED])
    return named + (f" and {len(keys) - PEOPLE_LISTED} more" if len(keys) > PEOPLE_LISTED else "")


def _with_reason(text: str, reason: str | None) -> list[Block]:
    return [section(text), section("*Reason:*"), quote(reason)] if reason else [section(text)]


CREDENTIAL_CHUNK = 2900  # characters of a credential per block (a block's text holds 3000)


def credential_blocks(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Credentials, never truncated: each value as preformatted plain text (no mrkdwn, so nothing in it is
    escaped or interpreted), a long one split across consecutive blocks with a note saying how to join them."""
    blocks: list[dict[str, Any]] = [section("*Credentials* (shown once):")]
    for key, raw in values.items():
        value = str(raw)
        parts = [value[i : i + CREDENTIAL_CHUNK] for i in range(0, len(value), CREDENTIAL_CHUNK)] or [""]
        label = f"• {escape(str(key), 100)}"
        if len(parts) > 1:
            label += f" ({len(value)} characters in {len(parts)} parts: join them without spaces or line breaks)"
        blocks.append(context(label))
        blocks.extend(_preformatted(part) for part in parts)
    return blocks


def _preformatted(text: str) -> dict[str, Any]:
    return {"type": "rich_text", "elements": [
        {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": text or " "}]}]}


def render(notice: Notice) -> dict[str, Any] | None:
    """The message for a notification, or None when there is nothing to say (an unknown kind)."""
    record = notice.request
    if notice.kind == "audit_post":
        text = audit_text(notice.payload, record)
        return {"text": text, "blocks": [section(text)]}
    if notice.kind == "revoke_failing":
        error = escape(str(notice.payload.get("error", "")), 500)
        text = f"⚠️ Revoking grant {notice.grant_id} keeps failing: {error}"
        return {"text": text, "blocks": [section(text)]}
    if record is None:
        return None
    grant = notice.grant
    until = grant.expires_at if grant is not None else record.expires_at
    value = str(record.id)
    match notice.kind:
        case "approval_request":  # sent late (rate limit, escalation race): show the outcome, not buttons
            if record.state == "pending" or record.awaiting_review:
                return approval_message(record, notice.recipient)
            return decided_message(record)
        case "approval_update":
            return decided_message(record)
        case "channel_thread":
            text = thread_text(notice.payload, record, grant)
            return {"text": text, "blocks": [section(text)]}
        case "request_submitted":
            approvers = list(notice.payload.get("approvers") or [])
            channel = notice.payload.get("channel")
            text = (
                f"Your request #{record.id} is waiting for approval"
                + (" from " + _people(approvers) if approvers else "")
                + (f" (also posted in <#{escape(str(channel), 20)}>)" if channel else "")
                + "."
            )
            return {
                "text": text,
                "blocks": [
                    section(text),
                    *summary(record),
                    actions(f"own_{record.id}", button("Cancel", Ids.CANCEL, value)),
                ],
            }
        case "request_approved":
            approvers = [v.approver_id for v in record.votes if v.decision == "approve"] or [record.decided_by or ""]
            text = f"✅ {_people(approvers)} approved your request #{record.id}; granting it now."
            return {"text": text, "blocks": _with_reason(text, record.decision_reason)}
        case "request_escalated":
            tier = notice.payload.get("tier")
            approvers = list(notice.payload.get("approvers") or [])
            text = (f"⏫ Your request #{record.id} was escalated (tier {escape(str(tier), 4)})"
                    + (f": {_people(approvers)} can now approve it too." if approvers else "."))
            return {"text": text, "blocks": [section(text)]}
        case "break_glass_notice":
            reviewers = list(notice.payload.get("reviewers") or [])
            text = (f"🚨 Request #{record.id} is granted at once under break-glass, without approval. "
                    + (f"{_people(reviewers)} will review it" if reviewers else "The admins will review it")
                    + "; every step is in the audit trail.")
            return {"text": text, "blocks": [section(text), *summary(record)]}
        case "break_glass_reviewed":
            verdict = "acknowledged" if notice.payload.get("outcome") == "acknowledged" else "revoked at review"
            text = f"Break-glass request #{record.id} was {verdict} by {user(record.reviewed_by or '')}."
            return {"text": text, "blocks": [section(text)]}
        case "approval_progress":
            approver = user(str(notice.payload.get("approver", "")))
            waiting = escape(str(notice.payload.get("waiting_for") or "more approvals"), 200)
            text = f"{approver} approved your request #{record.id}; it is still waiting for {waiting}."
            return {"text": text, "blocks": [section(text)]}
        case "grantee_mfa":
            return grantee_mfa.confirm_message(record, notice.recipient)
        case "grantee_mfa_waiting":
            return grantee_mfa.waiting_message(record, list(notice.payload.get("grantees") or []))
        case "grantee_mfa_expired":
            return grantee_mfa.expired_message(record, list(notice.payload.get("grantees") or []))
        case "grantee_notice":
            text = f"{user(record.requester_id)} requested access for you (request #{record.id})."
            return {"text": text, "blocks": [section(text), *summary(record)]}
        case "request_closed":
            state = str(notice.payload.get("state", record.state))
            text = f"Request #{record.id}: {OUTCOME.get(state, state)}"
            if record.decided_by and state == "denied":
                text += f" by {user(record.decided_by)}"
            return {"text": text, "blocks": _with_reason(text, record.decision_reason)}
        case "access_granted":
            text = f"✅ You have {_what(grant, record)} until {when(until)} (request #{record.id})."
            blocks = [section(text)]
            if notice.credentials:
                blocks.extend(credential_blocks(notice.credentials))
            blocks.append(actions(f"grant_{record.id}", button("Revoke now", Ids.REVOKE, value, "danger")))
            return {"text": text, "blocks": blocks}
        case "access_granted_requester":
            text = (
                f"✅ Request #{record.id} is granted: {_what(None, record)} until {when(record.expires_at)}."
            )
            return {"text": text, "blocks": [section(text)]}
        case "access_extended":
            text = f"⏩ {_what(grant, record)} is extended until {when(until)} (request #{record.id})."
            return {"text": text, "blocks": [section(text)]}
        case "expiry_reminder":
            text = f"⏰ {_what(grant, record)} ends {when(until)} (request #{record.id})."
            buttons = [button("Revoke now", Ids.REVOKE, value)]
            if record.extend_max_times > 0 and (grant is None or grant.extensions_used < record.extend_max_times):
                buttons.insert(0, button("Extend", Ids.EXTEND, value, "primary"))
            return {"text": text, "blocks": [section(text), actions(f"remind_{record.id}", *buttons)]}
        case "access_ended":
            reason = (grant.end_reason if grant is not None else None) or "ended"
            text = (
                f"Your access {_what(grant, record)} has ended ({escape(reason, 60)}; request #{record.id})."
            )
            return {"text": text, "blocks": [section(text)]}
        case "grant_failed":
            error = escape(str(notice.payload.get("error") or (grant.last_error if grant else "") or ""), 500)
            text = f"⚠️ Granting request #{record.id} failed: {error}"
            return {"text": text, "blocks": [section(text)]}
    return None
