"""Shared bits of the Block Kit builders: the stable ids (SPEC §6), mrkdwn escaping, times and durations."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from policy.durations import format_duration

Block = dict[str, Any]

MAX_TEXT = 2900  # a section's text may hold 3000 characters


class Ids(StrEnum):
    """Public ids: tests and anyone scripting against the bot rely on them (SPEC §6)."""

    REQUEST_MODAL = "access_request"
    RESOURCE = "resource"
    PERMISSION = "permission"
    GRANTEES = "grantees"
    DURATION = "duration_hours"
    JUSTIFICATION = "justification"
    MFA_CODE = "mfa_code"
    APPROVE = "approve"
    DENY = "deny"
    REASON_MODAL = "decision_reason"
    REASON = "reason"
    EXTEND = "extend"
    REVOKE = "revoke"
    CANCEL = "cancel"
    REQUEST_AGAIN = "request_again"
    NEW_REQUEST = "new_request"
    CONFIRM_MFA = "confirm_mfa"
    GRANTEE_MFA_MODAL = "grantee_mfa"
    SHOW_RESOURCES = "show_resources"  # "Show all" of a request's resources (value = request id)
    RESOURCE_LIST_MODAL = "resource_list"
    ACKNOWLEDGE = "acknowledge"  # break-glass review (value = request id)
    REVIEW_REVOKE = "review_revoke"


_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)


def escape(text: str | None, limit: int = 1000) -> str:
    """User text made safe for mrkdwn: no links, mentions or broadcasts; length-limited."""
    value = (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = _BROADCAST.sub(lambda m: "@\u200b" + m.group(1), value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def plain(text: str, limit: int = 75) -> dict[str, Any]:
    value = text if len(text) <= limit else text[: limit - 1] + "…"
    return {"type": "plain_text", "text": value or " ", "emoji": True}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text[:MAX_TEXT] or " "}


def section(text: str) -> Block:
    return {"type": "section", "text": mrkdwn(text)}


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(text)]}


def button(label: str, action_id: str, value: str | None = None, style: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "button", "text": plain(label), "action_id": action_id}
    if value is not None:
        element["value"] = value
    if style:
        element["style"] = style
    return element


def actions(block_id: str, *elements: dict[str, Any]) -> Block:
    return {"type": "actions", "block_id": block_id, "elements": list(elements)}


def when(at: datetime | None) -> str:
    """A time rendered by Slack in the reader's own time zone (with a UTC fallback)."""
    if at is None:
        return "no expiry"
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def hours(delta: timedelta | None) -> str:
    return format_duration(delta)


def user(user_id: str) -> str:
    return f"<@{user_id}>" if user_id and "@" not in user_id else escape(user_id)


def mfa_code_input(*, optional: bool = False) -> Block:
    """The MFA code field (block_id = action_id ``mfa_code``): the request modal's and the grantee's."""
    block: Block = {
        "type": "input",
        "block_id": Ids.MFA_CODE,
        "label": plain("MFA code"),
        "hint": plain("The 6-digit code from your authenticator (enroll with /access mfa).", 150),
        "element": {"type": "plain_text_input", "action_id": Ids.MFA_CODE, "min_length": 6, "max_length": 8},
    }
    if optional:  # some flows for the resource may not need it; the submit says when it does
        block["optional"] = True
    return block


def quote(text: str) -> Block:
    """User text shown inert: a ``rich_text`` quote of plain text (no mrkdwn, mentions, links or broadcasts)."""
    return {"type": "rich_text", "elements": [
        {"type": "rich_text_quote", "elements": [{"type": "text", "text": text[:MAX_TEXT]}]}]}


def names_within(names: list[str], *, limit: int = 10, budget: int = 600) -> tuple[list[str], int]:
    """As many names as fit (``limit`` names, ``budget`` characters), and how many are left out."""
    shown: list[str] = []
    used = 0
    for name in names[:limit]:
        item = f"`{escape(name, 60)}`"
        if shown and used + len(item) + 2 > budget:
            break
        shown.append(item)
        used += len(item) + 2
    return shown, len(names) - len(shown)


def listed(shown: list[str], hidden: int) -> str:
    """``a``, ``a and b``, ``a, b and c``, ``a, b and 12 more``."""
    if hidden:
        return f"{', '.join(shown)} and {hidden} more"
    if len(shown) <= 1:
        return "".join(shown) or "nothing"
    return f"{', '.join(shown[:-1])} and {shown[-1]}"


def resource_list(names: list[str], *, limit: int = 10) -> str:
    """```billing`, `ledger` and 12 more``: a request's resources within Slack's limits."""
    return listed(*names_within(names, limit=limit))
