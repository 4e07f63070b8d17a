"""``/access`` and its sub-commands (SPEC §6): the modal opens at once; the rest answer ephemerally."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.errors import reply
from handlers import mfa
from handlers.common import Deps, identity
from handlers.request_modal import open_modal
from handlers.views import commands as view
from policy.errors import AccessError


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
                return view.request_list(deps.service.list(user_id=user.key, limit=20))
            case "flows":
                return view.flow_list(deps.policy.current.usable_flows(user, deps.clock.now()), " ".join(args))
            case "extend":
                record = deps.extending.extend(_id(args), user, args[1] if len(args) > 1 else None)
                return view.extended(record)
            case "revoke":
                record = deps.revoking.revoke(_id(args), user)
                return f"Revoking access of request #{record.id}."
            case "mfa":
                if args:
                    return mfa.confirm(deps, user_id, args[0])
                return mfa.enroll(deps, client, user_id, user.email or user_id)
            case "cancel":
                return deps.service.cancel(_id(args), user).message
            case "help":
                return view.HELP
            case _:
                return view.unknown(verb)
    except AccessError as error:
        return reply(error)


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
