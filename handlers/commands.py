"""``/access`` and its sub-commands (SPEC §6): the modal opens at once; the rest answer ephemerally."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from handlers import mfa
from handlers.common import Deps, identity
from handlers.request_modal import open_modal
from handlers.views.approval import outcome
from handlers.views.common import escape, hours, when
from policy.describe import describe_labels, has_label
from policy.errors import AccessError
from policy.identity import Identity

HELP = """*accessbot* — just-in-time access
• `/access` — request access (opens a form)
• `/access list` — your requests and access
• `/access flows [LABEL]` — what you may request, and how (only flows with that label)
• `/access extend ID [HOURS]` — extend your active access
• `/access revoke ID` — end access now
• `/access cancel ID` — cancel a pending request
• `/access mfa` — enroll your authenticator (TOTP); `/access mfa CODE` confirms it
• `/access help` — this message"""


def _id(args: list[str]) -> int:
    if not args or not args[0].lstrip("#").isdigit():
        raise AccessError("Give the request number, e.g. `/access revoke 42`.")
    return int(args[0].lstrip("#"))


def answer(deps: Deps, client: WebClient, user_id: str, text: str) -> str:
    """The ephemeral reply to ``/access <text>`` (everything but opening the modal)."""
    words = text.split()
    verb, args = (words[0].lower(), words[1:]) if words else ("help", [])
    user = identity(deps, user_id)
    try:
        match verb:
            case "list":
                records = deps.service.list(user_id=user.key, limit=20)
                if not records:
                    return "You have no requests yet. Use `/access` to make one."
                return "\n".join(
                    f"*#{r.id}* {escape(r.permission, 60)} on "
                    + ", ".join(escape(n, 80) for n in r.resource_names[:3])
                    + f" · {outcome(r)}"
                    + (f" until {when(r.expires_at)}" if r.state == "active" else "")
                    for r in records
                )
            case "flows":
                return _flows(deps, user, " ".join(args))
            case "extend":
                record = deps.grants.extend(_id(args), user, args[1] if len(args) > 1 else None)
                return f"Request #{record.id} is extended until {when(record.expires_at)}."
            case "revoke":
                record = deps.grants.revoke(_id(args), user)
                return f"Revoking access of request #{record.id}."
            case "mfa":
                if args:
                    return mfa.confirm(deps, user_id, args[0])
                return mfa.enroll(deps, client, user_id, user.email or user_id)
            case "cancel":
                return deps.service.cancel(_id(args), user).message
            case "help":
                return HELP
            case _:
                return f"I don't know `/access {escape(verb, 40)}`. Here is what I do:\n{HELP}"
    except AccessError as error:
        return error.message


def _flows(deps: Deps, user: Identity, label: str) -> str:
    """``/access flows [LABEL]``: the flows the user may use now (with that label), each with its labels."""
    flows = deps.policy.current.usable_flows(user, deps.clock.now())
    if not flows:
        return "No access flow lets you request anything right now."
    chosen = [f for f in flows if has_label(f.flow, label)] if label else flows
    if not chosen:
        known = sorted({item for f in flows for item in f.flow.labels}, key=str.casefold)
        return (f"None of your flows has the label `{escape(label, 40)}`. "
                + (f"Their labels: {', '.join(f'`{escape(k, 40)}`' for k in known)}." if known
                   else "Your flows have no labels.")
                + " `/access flows` lists them all.")
    return "\n".join(
        f"• *{escape(f.name, 80)}* — up to {hours(f.flow.grant_for)}, "
        + ("automatic" if f.flow.approval.type == "automatic" else "needs approval")
        + (f" · {escape(describe_labels(f.flow), 200)}" if f.flow.labels else "")
        for f in chosen
    )


def register(app: App, deps: Deps) -> None:
    @app.command("/access")
    def access(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        text = (body.get("text") or "").strip()
        if not text:
            ack()
            open_modal(deps, client, body["trigger_id"], body["user_id"])
            return
        ack()
        respond(response_type="ephemeral", text=answer(deps, client, body["user_id"], text))
