"""A grantee confirms a request made for them with their own MFA code (SPEC §5, requests for others).

The DM's *Confirm with MFA* button (``confirm_mfa``, value = request id) opens the code modal
(``grantee_mfa``); a valid code releases the grantee's grants to the grant work. The service re-authorizes
every step.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import field_error, reply
from handlers.common import Deps, identity, tell, user_id_of
from handlers.views import grantee_mfa as view
from handlers.views.common import Ids
from policy.errors import AccessError
from store.db import foreground

log = logging.getLogger(__name__)

NOT_ENROLLED = (
    "To confirm, you need an authenticator first: type `/access mfa` to enroll, confirm it with "
    "`/access mfa CODE`, then press *Confirm with MFA* again."
)


def _request_id(body: dict[str, Any]) -> int | None:
    value = str((body.get("actions") or [{}])[0].get("value") or "")
    return int(value) if value.isdigit() else None


def _update_dm(client: WebClient, deps: Deps, submission: view.CodeSubmission, user_id: str) -> None:
    """Show the settled DM in place of the one with the button (display only: the state is already saved)."""
    if not submission.channel or not submission.ts:
        return
    try:
        record = deps.service.get(submission.request_id)
        client.chat_update(
            channel=submission.channel, ts=submission.ts, **view.confirm_message(record, user_id)
        )
    except (AccessError, SlackApiError):
        log.warning("could not update the confirmation DM of request %s", submission.request_id)


def register(app: App, deps: Deps) -> None:
    @app.action(Ids.CONFIRM_MFA)
    def confirm_clicked(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        user_id = user_id_of(body)
        request_id = _request_id(body)
        if request_id is None:
            tell(client, body, "That button no longer points at a request.")
            return
        try:
            with foreground():  # the code modal must open within the trigger's 3 s
                record = deps.service.check_confirmation(request_id, identity(deps, user_id))
        except AccessError as error:
            tell(client, body, reply(error))
            return
        if not deps.mfa.enrolled(user_id):
            tell(client, body, NOT_ENROLLED)
            return
        channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")
        ts = (body.get("container") or {}).get("message_ts") or (body.get("message") or {}).get("ts")
        client.views_open(trigger_id=body["trigger_id"], view=view.code_modal(record, channel, ts))

    @app.view(Ids.GRANTEE_MFA_MODAL)
    def code_submitted(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        user_id = user_id_of(body)
        submission = view.parse(body["view"])
        if submission is None:
            ack(response_action="errors", errors={Ids.MFA_CODE: "This form no longer points at a request."})
            return
        try:
            outcome = deps.service.confirm_grantee(
                submission.request_id,
                identity(deps, user_id),
                lambda: deps.mfa.verify(user_id, submission.code),
            )
        except AccessError as error:
            ack(response_action="errors", errors=field_error(Ids.MFA_CODE, error.message))
            return
        if not outcome.changed:  # a race: the deadline passed, or another submission confirmed first
            ack(response_action="errors", errors=field_error(Ids.MFA_CODE, outcome.message))
            return
        ack()
        _update_dm(client, deps, submission, user_id)
