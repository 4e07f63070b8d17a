"""A grantee confirms with their own MFA code: the DM with *Confirm with MFA* and the code modal. Pure.

Ids: the button's action_id ``confirm_mfa`` (value = request id); the modal's callback_id ``grantee_mfa`` with
the input block_id = action_id ``mfa_code``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.lifecycle.confirmations import AWAITING_MFA, UNCONFIRMED
from bot.lifecycle.records import RequestRecord
from handlers.views.approval import summary
from handlers.views.common import (
    Ids,
    actions,
    button,
    context,
    escape,
    mfa_code_input,
    plain,
    section,
    user,
    when,
)


class CodeSubmission(BaseModel):
    """A submitted code modal: the request and the DM to update (private metadata), and the code."""

    model_config = ConfigDict(frozen=True)

    request_id: int
    code: str = ""
    channel: str | None = None
    ts: str | None = None


def waits_for(record: RequestRecord, user_id: str | None) -> bool:
    return any(g.grantee_id == user_id and g.state == AWAITING_MFA for g in record.grants)


def confirm_message(record: RequestRecord, grantee_id: str | None) -> dict[str, Any]:
    """The grantee's DM: who asked for what and why, and the button (only while their grants wait)."""
    if not waits_for(record, grantee_id):
        return settled_message(record, grantee_id)
    text = (
        f"{user(record.requester_id)} requested access for you (request #{record.id}). "
        "Confirm with your MFA code to receive it."
    )
    blocks = [
        section(text),
        *summary(record),
        context(f"Confirm before {when(record.pending_until)}. Not enrolled yet? Type `/access mfa`."),
        actions(
            f"confirm_{record.id}",
            button("Confirm with MFA", Ids.CONFIRM_MFA, str(record.id), "primary"),
        ),
    ]
    return {"text": text, "blocks": blocks}


def settled_message(record: RequestRecord, grantee_id: str | None) -> dict[str, Any]:
    """The same DM once nothing waits for this grantee any more (confirmed, revoked or too late)."""
    states = {g.state for g in record.grants if g.grantee_id == grantee_id}
    if states & {"granting", "active", "revoking", "revoke_failed", "expired"}:
        outcome = "✅ You confirmed with MFA; the access is granted to you."
    elif UNCONFIRMED in states:
        outcome = "⌛ The time to confirm has passed; the access was not granted."
    else:
        outcome = "This request no longer waits for your confirmation."
    text = f"Access requested for you by {user(record.requester_id)} (request #{record.id}): {outcome}"
    return {"text": text, "blocks": [section(text), *summary(record)]}


def waiting_message(record: RequestRecord, grantees: list[str]) -> dict[str, Any]:
    """The requester's note: approved, now waiting for the grantees' own confirmation."""
    who = ", ".join(user(g) for g in grantees[:10]) or "the grantees"
    text = (
        f"Request #{record.id} is approved. The access goes to {who} once they confirm with their MFA code "
        f"(until {when(record.pending_until)})."
    )
    return {"text": text, "blocks": [section(text)]}


def expired_message(record: RequestRecord, grantees: list[str]) -> dict[str, Any]:
    who = ", ".join(user(g) for g in grantees[:10]) or "the grantees"
    text = (
        f"⌛ Request #{record.id}: {who} did not confirm with MFA in time, so that access was not granted. "
        "Make a new request if it is still needed."
    )
    return {"text": text, "blocks": [section(text)]}


def code_modal(record: RequestRecord, channel: str | None = None, ts: str | None = None) -> dict[str, Any]:
    """The modal asking the grantee for their code (the DM's channel and ts travel in private metadata)."""
    what = ", ".join(f"`{escape(n, 100)}`" for n in record.resource_names[:5])
    metadata = CodeSubmission(request_id=record.id, channel=channel, ts=ts).model_dump(exclude={"code"})
    return {
        "type": "modal",
        "callback_id": Ids.GRANTEE_MFA_MODAL,
        "title": plain(f"Confirm #{record.id}", 24),
        "submit": plain("Confirm", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps(metadata),
        "blocks": [
            section(
                f"{user(record.requester_id)} requested *{escape(record.permission, 100)}* on {what} "
                "for you. Enter a code from your authenticator to receive it."
            ),
            mfa_code_input(),
        ],
    }


def parse(view: dict[str, Any]) -> CodeSubmission | None:
    """The submitted modal's values, or None when its metadata does not name a request."""
    values = (view.get("state") or {}).get("values") or {}
    code = ((values.get(Ids.MFA_CODE) or {}).get(Ids.MFA_CODE) or {}).get("value") or ""
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
        return CodeSubmission.model_validate({**metadata, "code": code})
    except (ValueError, TypeError, ValidationError):
        return None
