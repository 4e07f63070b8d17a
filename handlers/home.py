"""App Home: published on open and after changes; its buttons call the same service as the commands."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.errors import reply
from handlers.common import Deps, identity, tell, user_id_of
from handlers.request_modal import open_modal
from handlers.views import home as view
from handlers.views.common import Ids
from policy.errors import AccessError


def publish(deps: Deps, client: WebClient, user_id: str) -> None:
    client.views_publish(user_id=user_id, view=view.build(deps.service.home(user_id)))


def register(app: App, deps: Deps) -> None:
    @app.event("app_home_opened")
    def home_opened(body: dict[str, Any], event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home" or not deps.service.first_delivery(
            str(body.get("event_id") or "")
        ):
            return
        publish(deps, client, event["user"])

    @app.action(Ids.NEW_REQUEST)
    def new_request(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        open_modal(deps, client, body["trigger_id"], user_id_of(body))

    @app.action(Ids.REQUEST_AGAIN)
    def request_again(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        """A new modal pre-filled from one of the clicker's own requests (anyone else's pre-fills nothing)."""
        ack()
        user_id = user_id_of(body)
        value = str((body.get("actions") or [{}])[0].get("value") or "")
        record = None
        if value.isascii() and value.isdigit() and len(value) <= 18:
            try:
                record = deps.service.get(int(value))
            except AccessError:
                record = None
        if record is not None and record.requester_id != user_id:
            record = None
        open_modal(deps, client, body["trigger_id"], user_id,
                   record.resource_keys if record else (), record.permission if record else None)

    def act(body: dict[str, Any], client: WebClient, verb: str) -> None:
        user_id = user_id_of(body)
        user = identity(deps, user_id)
        try:
            request_id = int(body["actions"][0]["value"])
            if verb == "extend":
                deps.extending.extend(request_id, user)
            elif verb == "revoke":
                deps.revoking.revoke(request_id, user)
            else:
                deps.service.cancel(request_id, user)
        except AccessError as error:
            tell(client, body, reply(error))
        except ValueError:
            tell(client, body, "That button no longer points at a request.")
        if (body.get("container") or {}).get("type") == "view":
            publish(deps, client, user_id)

    @app.action(Ids.EXTEND)
    def extend(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        act(body, client, "extend")

    @app.action(Ids.REVOKE)
    def revoke(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        act(body, client, "revoke")

    @app.action(Ids.CANCEL)
    def cancel(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        act(body, client, "cancel")
