"""App Home: active access, pending requests, waiting for my approval, history, a "New request" button."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bot.lifecycle.records import HomeData, RequestRecord
from handlers.views.approval import outcome
from handlers.views.common import Block, Ids, actions, button, escape, quote, resource_list, section, user, when

MAX_PER_SECTION = 10


def _line(record: RequestRecord) -> str:
    return f"*#{record.id}* {escape(record.permission, 60)} on {resource_list(record.resource_names, limit=5)}"


def _until(record: RequestRecord) -> str:
    """Until when the access runs: a time, "until revoked" (self-serve, indefinite) or, for an automatic flow,
    as long as the user matches it."""
    if record.expires_at is not None:
        return f"until {when(record.expires_at)}"
    return "held while you match the flow" if record.flow_type == "automatic" else "until revoked"


def extendable(record: RequestRecord) -> bool:
    """Extend is offered only where the flow allows it and some live grant has extensions left."""
    return record.extend_max_times > 0 and any(
        g.state == "active" and g.expires_at is not None and g.extensions_used < record.extend_max_times
        for g in record.grants
    )


def _header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def _status(record: RequestRecord, user_id: str) -> str:
    """How the request's grants stand, for its App Home line: until when, or what is still under way or failing."""
    grants = record.grants
    states = {g.state for g in grants}
    notes = []
    if "active" in states:
        notes.append(_until(record))
    if "granting" in states:
        failing = [g for g in grants if g.state == "granting" and g.last_error]
        notes.append(
            f":hourglass: granting — retrying after {max(g.attempts for g in failing)} failed attempt(s): "
            f"{escape(failing[0].last_error, 150)}" if failing else ":hourglass: being granted"
        )
    waiting = sorted({g.grantee_id for g in grants if g.state == "awaiting_mfa"})
    if waiting:
        who = "you" if waiting == [user_id] else ", ".join(user(w) for w in waiting)
        notes.append(f":lock: waiting for {who} to confirm with an MFA code")
    revoking = [g for g in grants if g.state in ("revoking", "revoke_failed")]
    if revoking:
        failed = [g for g in revoking if g.last_error]
        notes.append(
            f":warning: revoke failing ({max(g.attempts for g in failed)} attempts, retried; admins are alerted): "
            f"{escape(failed[0].last_error, 150)}" if failed else "being revoked"
        )
    return " · ".join(notes)


def _active_buttons(record: RequestRecord, user_id: str) -> list[Block]:
    states = {g.state for g in record.grants}
    buttons = []
    if extendable(record):
        buttons.append(button("Extend", Ids.EXTEND, str(record.id)))
    if any(g.state == "awaiting_mfa" and g.grantee_id == user_id for g in record.grants):
        buttons.append(button("Confirm with MFA", Ids.CONFIRM_MFA, str(record.id), "primary"))
    if states & {"active", "granting", "awaiting_mfa"}:
        buttons.append(button("Revoke now", Ids.REVOKE, str(record.id), "danger"))
    return buttons


def _part(
    title: str,
    records: Sequence[RequestRecord],
    empty: str,
    prefix: str,
    line: Callable[[RequestRecord], str],
    buttons: Callable[[RequestRecord], list[Block]],
    why: bool = False,
) -> list[Block]:
    """One App Home section: a header, then a line and its buttons per request (or what to say when none);
    with ``why``, the justification quoted under each line (inert text)."""
    blocks = [_header(title)]
    for r in records[:MAX_PER_SECTION]:
        blocks.append(section(line(r)))
        if why and r.justification:
            blocks.append(quote(r.justification[:300]))
        elements = buttons(r)
        if elements:
            blocks.append(actions(f"{prefix}_{r.id}", *elements))
    if not records:
        blocks.append(section(empty))
    return blocks


def build(data: HomeData) -> dict[str, Any]:
    me = data.user_id
    blocks: list[Block] = [
        actions("home_actions", button("New request", Ids.NEW_REQUEST, style="primary")),
        *_part("Active access", data.active, "_None right now._", "active",
               lambda r: f"{_line(r)} · {_status(r, me)}", lambda r: _active_buttons(r, me)),
        *_part("Pending requests", data.pending, "_None._", "pending",
               lambda r: f"{_line(r)} · waiting since {when(r.created_at)}",
               lambda r: [button("Cancel", Ids.CANCEL, str(r.id))]),
        *_part("Waiting for my approval", data.to_approve, "_Nothing to decide._", "approve",
               lambda r: f"{_line(r)} · from {user(r.requester_id)}",
               lambda r: [button("Approve", Ids.APPROVE, str(r.id), "primary"),
                          button("Deny", Ids.DENY, str(r.id), "danger")], why=True),
        *_part("Recent history", data.history, "_No requests yet._", "history",
               lambda r: f"{_line(r)} · {outcome(r)}",
               lambda r: [button("Request again", Ids.REQUEST_AGAIN, str(r.id))]),
    ]
    return {"type": "home", "blocks": blocks[:100]}
