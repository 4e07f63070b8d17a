"""Lifecycle events as channel texts: the thread under a channel approval, and the audit channel. Pure.

People are named as mentions (``<@U…>``, rendered as their names by Slack), never as raw ids.
"""

from __future__ import annotations

from typing import Any

from bot.lifecycle.records import GrantRecord, RequestRecord
from handlers.views.common import escape, resource_list, user, when

PEOPLE_KEYS = frozenset({"grantees", "approvers", "reviewers", "user", "grantee"})


def _people(value: Any) -> str:
    keys = value if isinstance(value, list) else [value]
    return ", ".join(user(str(k)) for k in keys[:20]) or "nobody"


def _detail(key: str, value: Any) -> str:
    if key in PEOPLE_KEYS:
        return f"{escape(key, 40)}: {_people(value)}"
    return escape(f"{key}={value}", 300)


def _access(record: RequestRecord | None, grant: GrantRecord | None) -> str:
    if grant is not None:
        return f"*{escape(grant.permission, 100)}* on `{escape(grant.resource_name, 200)}` for {user(grant.grantee_id)}"
    if record is not None:
        return f"*{escape(record.permission, 100)}* on {resource_list(record.resource_names)}"
    return "access"


def audit_text(payload: dict[str, Any], record: RequestRecord | None) -> str:
    """One audit event for the audit channel; a break-glass grant is announced loudly."""
    event = str(payload.get("event", ""))
    actor = user(str(payload.get("actor", "")))
    details: dict[str, Any] = payload.get("details") or {}
    if event == "break_glass_granted" and record is not None:
        reviewers = details.get("reviewers") or []
        return (f"🚨 *BREAK-GLASS* — {actor} took {_access(record, None)} without approval "
                f"(request #{record.id}, flow {escape(record.flow_name, 100)}). "
                + (f"Review asked of {_people(reviewers)}." if reviewers else "Nobody could be asked to review it."))
    text = f"`{escape(event, 60)}` by {actor}"
    if record is not None:
        text += f" · request #{record.id} ({escape(record.flow_name, 100)})"
    if details:
        text += "\n" + ", ".join(_detail(str(k), v) for k, v in details.items())[:1500]
    return text


def thread_text(payload: dict[str, Any], record: RequestRecord, grant: GrantRecord | None) -> str:
    """A reply in the thread under a channel approval: escalations, grants, revokes, reviews."""
    event = str(payload.get("event", ""))
    actor = str(payload.get("actor", ""))
    details: dict[str, Any] = payload.get("details") or {}
    match event:
        case "escalated":
            return (f"⏫ Escalated to tier {escape(str(details.get('tier')), 4)}: "
                    f"{_people(details.get('approvers') or [])} can approve now.")
        case "granted":
            until = grant.expires_at if grant is not None else None
            return f"✅ Granted {_access(record, grant)}" + (f" until {when(until)}." if until else " until revoked.")
        case "revoked":
            return f"🔒 Revoked {_access(record, grant)}" + ("" if actor == "accessbot" else f" by {user(actor)}") + "."
        case "expired":
            return f"⌛ Expired: {_access(record, grant)}."
        case "grant_failed" | "revoke_failed":
            return f"⚠️ {escape(event.replace('_', ' '), 40).capitalize()}: {_access(record, grant)}."
        case "break_glass_acknowledged":
            return f"✅ Break-glass review: acknowledged by {user(actor)}."
        case "break_glass_revoked":
            return f"⛔ Break-glass review: revoked by {user(actor)}."
    return f"`{escape(event, 60)}` by {user(actor)}"
