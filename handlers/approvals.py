"""Approve / Deny buttons and the reason modal: every click is re-authorized by the service (SPEC §5, §8)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.errors import field_error, reply
from bot.lifecycle.requests import MAX_REASON, Outcome
from handlers.common import Deps, fresh_identity, tell, user_id_of
from handlers.home import publish
from handlers.views import approval as view
from handlers.views.common import Ids
from policy.errors import AccessError, NotFound


def decide(deps: Deps, user_id: str, request_id: int, decision: str, reason: str | None = None) -> Outcome:
    """Record the vote (raises AccessError when refused). Called after the ack: the clicker is read from Slack
    now, so a deactivated approver cannot decide even when the ``user_change`` event was missed."""
    approver = fresh_identity(deps, user_id)
    if decision == "approve":
        return deps.service.approve(request_id, approver, reason)
    return deps.service.deny(request_id, approver, reason)


def reason_problem(reason: str) -> str | None:
    """What is wrong with a reason typed in the reason modal (the service checks it again), before the ack."""
    text = reason.strip()
    if not text:
        return "A reason is required for this decision."
    if len(text) > MAX_REASON:
        return f"Keep the reason to {MAX_REASON} characters."
    return None


def _request_id(body: dict[str, Any]) -> int:
    try:
        return int(body["actions"][0].get("value") or "")
    except ValueError as error:
        raise NotFound("That button no longer points at a request.") from error


def register(app: App, deps: Deps) -> None:
    def clicked(decision: str, ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        user_id = user_id_of(body)
        try:
            request_id = _request_id(body)
            record = deps.service.get(request_id)
            if record.require_approver_reason and record.state == "pending":
                client.views_open(trigger_id=body["trigger_id"], view=view.reason_modal(request_id, decision))
                return
            outcome = decide(deps, user_id, request_id, decision)
            if outcome.changed and outcome.request.state == "pending":  # say who else must still approve
                tell(client, body, outcome.message)
        except AccessError as error:
            tell(client, body, reply(error))
        if (body.get("view") or {}).get("type") == "home":
            publish(deps, client, user_id)

    @app.action(Ids.APPROVE)
    def approve(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        clicked("approve", ack, body, client)

    @app.action(Ids.DENY)
    def deny(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        clicked("deny", ack, body, client)

    @app.view(Ids.REASON_MODAL)
    def reason_given(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        try:
            request_id, decision, reason = view.parse_reason(body["view"])
        except (ValueError, KeyError, TypeError, AttributeError):  # not a reason modal this bot opened
            ack()
            client.chat_postMessage(channel=user_id_of(body), text="That form no longer points at a request.")
            return
        problem = reason_problem(reason)
        if problem:  # decided without Slack: the field error goes back in the ack
            ack(response_action="errors", errors=field_error(Ids.REASON, problem))
            return
        ack()
        try:
            decide(deps, user_id_of(body), request_id, decision, reason)
        except AccessError as error:
            client.chat_postMessage(channel=user_id_of(body), text=reply(error))
