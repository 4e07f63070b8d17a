"""Approve / Deny buttons, the reason modal, break-glass reviews (Acknowledge / Revoke now) and "Show all" of
a request's resources: every click is re-authorized by the service (SPEC §5, §8). In a flow's approval
channel anyone may click; only eligible approvers' clicks count, anyone else is told so ephemerally."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.errors import field_error, reply
from bot.lifecycle.records import RequestRecord
from bot.lifecycle.request_input import reason_of
from bot.lifecycle.requests import Outcome
from handlers.common import Deps, fresh_identity, identity, tell, user_id_of
from handlers.home import publish
from handlers.views import approval as view
from handlers.views.common import Ids
from policy.errors import AccessError, NotFound
from store.db import foreground


def decide(deps: Deps, user_id: str, request_id: int, decision: str, reason: str | None = None,
           read: RequestRecord | None = None) -> Outcome:
    """Record the vote (raises AccessError when refused). Called after the ack: the clicker is read from Slack
    now, so a deactivated approver cannot decide even when the ``user_change`` event was missed. ``read``: the
    request as the listener has just read it."""
    approver = fresh_identity(deps, user_id)
    if decision == "approve":
        return deps.service.approve(request_id, approver, reason, read=read)
    return deps.service.deny(request_id, approver, reason, read=read)


def reason_problem(reason: str) -> str | None:
    """What is wrong with a reason typed in the reason modal (the service checks it again), before the ack:
    decided without Slack, with the same rules the service applies (length, control and bidi characters)."""
    if not reason.strip():
        return "A reason is required for this decision."
    try:
        reason_of(reason)
    except AccessError as error:
        return error.message
    return None


def _request_id(body: dict[str, Any]) -> int:
    """The request id a button carries: ASCII digits, bounded (anything else points at nothing)."""
    value = str((body.get("actions") or [{}])[0].get("value") or "")
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise NotFound("That button no longer points at a request.")
    return int(value)


def register(app: App, deps: Deps) -> None:
    def clicked(decision: str, ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        user_id = user_id_of(body)
        try:
            request_id = _request_id(body)
            with foreground():  # it may open the reason modal: the trigger expires 3 s after the click
                record = deps.service.get(request_id)
            if record.require_approver_reason and record.state == "pending":
                client.views_open(trigger_id=body["trigger_id"], view=view.reason_modal(request_id, decision))
                return
            outcome = decide(deps, user_id, request_id, decision, read=record)
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

    @app.action(Ids.ACKNOWLEDGE)
    def acknowledge(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        try:
            outcome = deps.service.review(_request_id(body), fresh_identity(deps, user_id_of(body)), "acknowledged")
            tell(client, body, f"Acknowledged: break-glass request #{outcome.request.id} stays as it is.")
        except AccessError as error:
            tell(client, body, reply(error))

    @app.action(Ids.REVIEW_REVOKE)
    def revoke_at_review(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        reviewer = fresh_identity(deps, user_id_of(body))
        try:
            request_id = _request_id(body)
            deps.service.review(request_id, reviewer, "revoked")  # authorizes the reviewer and records it
            deps.revoking.revoke(request_id, reviewer, reason="revoked at break-glass review", as_admin=True)
            tell(client, body, f"Revoking the access of break-glass request #{request_id}.")
        except AccessError as error:
            tell(client, body, reply(error))

    @app.action(Ids.SHOW_RESOURCES)
    def show_resources(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        try:
            with foreground():  # the modal must open within the trigger's 3 s
                record = deps.service.visible(_request_id(body), identity(deps, user_id_of(body)))
        except AccessError as error:
            tell(client, body, reply(error))
            return
        client.views_open(trigger_id=body["trigger_id"], view=view.resource_list_modal(record))

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
