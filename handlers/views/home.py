"""App Home: active access, pending requests, waiting for my approval, history, a "New request" button."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.records import RequestRecord
from handlers.views.approval import OUTCOME
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


def build(data: HomeData) -> dict[str, Any]:
    blocks: list[Block] = [actions("home_actions", button("New request", Ids.NEW_REQUEST, style="primary"))]
    blocks.append(_header("Active access"))
    for r in data.active[:MAX_PER_SECTION]:
        blocks.append(section(f"{_line(r)} until {when(r.expires_at)}"))
        blocks.append(
            actions(
                f"active_{r.id}",
                button("Extend", Ids.EXTEND, str(r.id)),
                button("Revoke now", Ids.REVOKE, str(r.id), "danger"),
            )
        )
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
        blocks.append(section(f"{_line(r)} · {OUTCOME.get(r.state, r.state)}"))
        blocks.append(actions(f"history_{r.id}", button("Request again", Ids.REQUEST_AGAIN, str(r.id))))
    if not data.history:
        blocks.append(section("_No requests yet._"))
    return {"type": "home", "blocks": blocks[:100]}
