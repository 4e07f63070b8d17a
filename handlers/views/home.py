"""App Home: active access, pending requests, waiting for my approval, history, a "New request" button."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.records import RequestRecord
from handlers.views.approval import outcome
from handlers.views.common import Block, Ids, actions, button, escape, section, user, when

MAX_PER_SECTION = 10


@dataclass(frozen=True, slots=True)
class HomeData:
    user_id: str
    active: Sequence[RequestRecord] = ()
    pending: Sequence[RequestRecord] = ()
    to_approve: Sequence[RequestRecord] = ()
    history: Sequence[RequestRecord] = ()


def _line(record: RequestRecord) -> str:
    names = ", ".join(f"`{escape(n, 100)}`" for n in record.resource_names[:5])
    return f"*#{record.id}* {escape(record.permission, 60)} on {names}"


def _header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def _status(record: RequestRecord, user_id: str) -> str:
    """How the request's grants stand, for its App Home line: until when, or what is still under way or failing."""
    grants = record.grants
    states = {g.state for g in grants}
    notes = []
    if "active" in states:
        notes.append(f"until {when(record.expires_at)}" if record.expires_at else "held while you match the flow")
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
    if "active" in states and record.expires_at is not None:  # held-while-matching access has nothing to extend
        buttons.append(button("Extend", Ids.EXTEND, str(record.id)))
    if any(g.state == "awaiting_mfa" and g.grantee_id == user_id for g in record.grants):
        buttons.append(button("Confirm with MFA", Ids.CONFIRM_MFA, str(record.id), "primary"))
    if states & {"active", "granting", "awaiting_mfa"}:
        buttons.append(button("Revoke now", Ids.REVOKE, str(record.id), "danger"))
    return buttons


def build(data: HomeData) -> dict[str, Any]:
    blocks: list[Block] = [actions("home_actions", button("New request", Ids.NEW_REQUEST, style="primary"))]
    blocks.append(_header("Active access"))
    for r in data.active[:MAX_PER_SECTION]:
        blocks.append(section(f"{_line(r)} · {_status(r, data.user_id)}"))
        buttons = _active_buttons(r, data.user_id)
        if buttons:
            blocks.append(actions(f"active_{r.id}", *buttons))
    if not data.active:
        blocks.append(section("_None right now._"))
    blocks.append(_header("Pending requests"))
    for r in data.pending[:MAX_PER_SECTION]:
        blocks.append(section(f"{_line(r)} · waiting since {when(r.created_at)}"))
        blocks.append(actions(f"pending_{r.id}", button("Cancel", Ids.CANCEL, str(r.id))))
    if not data.pending:
        blocks.append(section("_None._"))
    blocks.append(_header("Waiting for my approval"))
    for r in data.to_approve[:MAX_PER_SECTION]:
        blocks.append(
            section(f"{_line(r)} · from {user(r.requester_id)}\n*Why:* {escape(r.justification, 300)}")
        )
        blocks.append(
            actions(
                f"approve_{r.id}",
                button("Approve", Ids.APPROVE, str(r.id), "primary"),
                button("Deny", Ids.DENY, str(r.id), "danger"),
            )
        )
    if not data.to_approve:
        blocks.append(section("_Nothing to decide._"))
    blocks.append(_header("Recent history"))
    for r in data.history[:MAX_PER_SECTION]:
        blocks.append(section(f"{_line(r)} · {outcome(r)}"))
        blocks.append(actions(f"history_{r.id}", button("Request again", Ids.REQUEST_AGAIN, str(r.id))))
    if not data.history:
        blocks.append(section("_No requests yet._"))
    return {"type": "home", "blocks": blocks[:100]}
