"""The request modal: open it, load resource options, follow the chosen resource, submit (SPEC §6)."""

from __future__ import annotations

import dataclasses
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.errors import field_errors
from bot.lifecycle.requests import RequestInput
from handlers.common import Deps, identity
from handlers.views import request_modal as view
from handlers.views.common import Ids
from policy.errors import AccessError
from policy.identity import Identity
from policy.request_form import request_form

MODAL_FIELDS = {Ids.RESOURCE, Ids.PERMISSION, Ids.GRANTEES, Ids.DURATION, Ids.JUSTIFICATION, Ids.MFA_CODE}


def modal_state(
    deps: Deps, user: Identity, resource_key: str | None = None, permission: str | None = None
) -> view.ModalState:
    """What the modal offers this user now (policy only: no database)."""
    return view.state_of(request_form(deps.policy.current, user, deps.clock.now(), resource_key, permission))


def open_modal(
    deps: Deps,
    client: WebClient,
    trigger_id: str,
    user_id: str,
    resource_key: str | None = None,
    permission: str | None = None,
) -> None:
    """Open at once (the trigger expires in 3 s), then fill in what the user's flows allow."""
    opened = client.views_open(trigger_id=trigger_id, view=view.build(view.ModalState()))
    state = modal_state(deps, identity(deps, user_id), resource_key, permission)
    if state != view.ModalState():
        client.views_update(view_id=opened["view"]["id"], hash=opened["view"]["hash"], view=view.build(state))


def submit(deps: Deps, user_id: str, raw_view: dict[str, Any]) -> dict[str, str] | None:
    """Submit the request; the field errors to show, or None when it went through."""
    values = view.parse(raw_view)
    present = {b.get("block_id") for b in raw_view.get("blocks") or []} or MODAL_FIELDS
    try:
        requester = identity(deps, user_id)
        permission = values.permission
        if permission is None and values.resource:
            options = deps.policy.current.permissions_for(requester, deps.clock.now(), values.resource)
            if len(options) != 1:
                raise AccessError("Choose a permission.", field=Ids.PERMISSION)
            permission = options[0].name
        request = RequestInput(
            requester=requester,
            resource_keys=[values.resource] if values.resource else [],
            permission=permission or "",
            grantees=[identity(deps, g) for g in values.grantees],
            duration_hours=values.duration_hours,
            justification=values.justification,
        )
        choice = deps.service.preview(request)  # validate everything before a one-time code is spent
        if choice.require_mfa:
            if not values.mfa_code or not deps.mfa.verify(requester.key, values.mfa_code):
                raise AccessError("That code is not valid (or was already used).", field=Ids.MFA_CODE)
            request = dataclasses.replace(request, mfa_verified=True)
        deps.service.submit(request)
    except AccessError as error:
        return field_errors(error, present, Ids.RESOURCE)
    return None


def register(app: App, deps: Deps) -> None:
    @app.options(Ids.RESOURCE)
    def resource_options(ack: Ack, body: dict[str, Any]) -> None:
        user = identity(deps, body["user"]["id"])
        found = deps.policy.current.requestable_resources(user, deps.clock.now(), body.get("value") or "")
        ack(options=[view.option(r.key, view.resource_label(r)) for r in found[: view.MAX_OPTIONS]])

    @app.action(Ids.RESOURCE)
    def resource_chosen(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        chosen = (body["actions"][0].get("selected_option") or {}).get("value")
        state = modal_state(deps, identity(deps, body["user"]["id"]), chosen)
        client.views_update(view_id=body["view"]["id"], hash=body["view"]["hash"], view=view.build(state))

    @app.action(Ids.PERMISSION)
    def permission_chosen(ack: Ack) -> None:
        ack()

    @app.view(Ids.REQUEST_MODAL)
    def submitted(ack: Ack, body: dict[str, Any]) -> None:
        errors = submit(deps, body["user"]["id"], body["view"])
        if errors:
            ack(response_action="errors", errors=errors)
        else:
            ack()

