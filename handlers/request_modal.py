"""The request modal: open it, load resource options, follow the chosen resources, submit (SPEC §6).

A submission makes at most one request per Slack view id (SPEC §8): a replayed or retried delivery of the same
signed ``view_submission`` is acknowledged and changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import field_errors
from bot.lifecycle.requests import RequestInput
from handlers.common import Deps, identity
from handlers.views import request_modal as view
from handlers.views.common import Ids
from policy import picker
from policy.errors import AccessError
from policy.identity import Identity
from policy.request_form import request_form

log = logging.getLogger(__name__)

MODAL_FIELDS = {Ids.RESOURCE, Ids.PERMISSION, Ids.GRANTEES, Ids.DURATION, Ids.JUSTIFICATION, Ids.MFA_CODE}


def modal_state(
    deps: Deps, user: Identity, resource_keys: Sequence[str] = (), permission: str | None = None
) -> view.ModalState:
    """What the modal offers this user now (policy only: no database)."""
    return view.state_of(request_form(deps.policy.current, user, deps.clock.now(), resource_keys, permission))


def open_modal(
    deps: Deps,
    client: WebClient,
    trigger_id: str,
    user_id: str,
    resource_keys: Sequence[str] = (),
    permission: str | None = None,
) -> None:
    """Open at once (the trigger expires in 3 s), then fill in what the user's flows allow."""
    opened = client.views_open(trigger_id=trigger_id, view=view.build(view.ModalState()))
    state = modal_state(deps, identity(deps, user_id), resource_keys, permission)
    if state != view.ModalState():
        client.views_update(view_id=opened["view"]["id"], hash=opened["view"]["hash"], view=view.build(state))


def _keys(deps: Deps, values: Sequence[str]) -> list[str]:
    """The chosen resources' keys, for redrawing the modal (what no longer resolves is dropped)."""
    policy = deps.policy.current
    keys: list[str] = []
    for value in values:
        try:
            keys.extend(picker.resolve(policy, [value]))
        except AccessError:
            continue
    return list(dict.fromkeys(keys))


def submit(deps: Deps, user_id: str, raw_view: dict[str, Any]) -> dict[str, str] | None:
    """Submit the request; the field errors to show, or None when it went through (or already had).

    Slack may deliver a submission again: the request exists then, and the answer is the same as the first's.
    That is looked up only where it matters (before a one-time code is spent, or before an error is shown);
    otherwise the request's unique view id answers it (:meth:`AccessService.submit`)."""
    view_id = str(raw_view.get("id") or "") or None

    def already_submitted() -> bool:
        return view_id is not None and deps.service.submitted_from(view_id) is not None

    values = view.parse(raw_view)
    present = {b.get("block_id") for b in raw_view.get("blocks") or []} or MODAL_FIELDS
    try:
        requester = identity(deps, user_id)
        policy = deps.policy.current
        keys = picker.resolve(policy, values.resources)
        permission = values.permission
        if permission is None and keys:
            form = request_form(policy, requester, deps.clock.now(), keys)
            if form.problem:
                raise AccessError(form.problem, field=Ids.RESOURCE)
            if len(form.permissions) != 1:
                raise AccessError("Choose a permission.", field=Ids.PERMISSION)
            permission = form.permissions[0][0].name
        request = RequestInput(
            requester=requester,
            resource_keys=keys,
            permission=permission or "",
            grantees=[identity(deps, g) for g in dict.fromkeys(values.grantees)],
            duration_hours=values.duration_hours,
            justification=values.justification,
            view_id=view_id,
        )
        choice = deps.service.preview(request)  # validate everything before a one-time code is spent
        if choice.require_mfa:
            if already_submitted():
                return None
            if not values.mfa_code or not deps.mfa.verify(requester.key, values.mfa_code):
                raise AccessError("That code is not valid (or was already used).", field=Ids.MFA_CODE)
            request = dataclasses.replace(request, mfa_verified=True)
        deps.service.submit(request)
    except AccessError as error:
        if already_submitted():
            return None
        return field_errors(error, present, Ids.RESOURCE)
    return None


def _redraw(deps: Deps, client: WebClient, body: dict[str, Any], keys: Sequence[str], permission: str | None) -> None:
    state = modal_state(deps, identity(deps, body["user"]["id"]), keys, permission)
    try:
        client.views_update(view_id=body["view"]["id"], hash=body["view"]["hash"], view=view.build(state))
    except SlackApiError as error:  # the user changed it again meanwhile: that change redraws it
        if error.response.get("error") != "hash_conflict":
            raise
        log.info("request modal changed while it was redrawn; keeping the newer one")


def register(app: App, deps: Deps) -> None:
    @app.options(Ids.RESOURCE)
    def resource_options(ack: Ack, body: dict[str, Any]) -> None:
        user = identity(deps, body["user"]["id"])
        groups = picker.options(deps.policy.current, user, deps.clock.now(), body.get("value") or "")
        ack(**view.option_groups(groups))

    @app.action(Ids.RESOURCE)
    def resources_chosen(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        chosen = view.selected_resources(body["actions"][0])
        submitted = view.parse(body["view"])
        _redraw(deps, client, body, _keys(deps, chosen), submitted.permission)

    @app.action(Ids.PERMISSION)
    def permission_chosen(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        permission = (body["actions"][0].get("selected_option") or {}).get("value")
        submitted = view.parse(body["view"])
        _redraw(deps, client, body, _keys(deps, submitted.resources), permission)

    @app.view(Ids.REQUEST_MODAL)
    def submitted(ack: Ack, body: dict[str, Any]) -> None:
        errors = submit(deps, body["user"]["id"], body["view"])
        if errors:
            ack(response_action="errors", errors=errors)
        else:
            ack()
