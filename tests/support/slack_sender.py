"""Sends signed Slack payloads of the real wire formats to the bot's `POST /slack/events`.

    sender = SlackSender("http://127.0.0.1:3000", "signing-secret", response_url_base=fake.hooks_url)
    sender.command("U1", "list")                                     # a slash command, form-encoded
    view = fake.last_view("access_request")                          # the modal the bot opened
    sender.view_submission("U1", view, input_values({"duration_hours": text_value("2")}))

Signatures are Slack's: HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret, sent as
`X-Slack-Request-Timestamp` and `X-Slack-Signature: v0=<hex>`. `raw` sends forged, unsigned or stale bodies.
Only the standard library (and the fake workspace's ids) is used; HTTP errors come back as a `Response`, never
as an exception.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from tests.support.fake_slack_workspace import TEAM_DOMAIN, TEAM_ID  # the workspace the fake Slack plays

APP_ID = "A0TEST"
VERIFICATION_TOKEN = "legacy-verification-token"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

_serial = itertools.count(1)


# --- Slack's payloads: the same over HTTP (SlackSender) and Socket Mode (tests.support.fake_socket_mode) ------


def new_trigger_id() -> str:
    n = next(_serial)
    return f"{1_000_000_000_000 + n}.{1_000_000_000 + n}.{secrets.token_hex(16)}"


def command_payload(
    user_id: str,
    text: str,
    *,
    response_url: str,
    command: str = "/access",
    trigger_id: str | None = None,
    channel_id: str = "C0GENERAL",
    team_id: str = TEAM_ID,
    team_domain: str = TEAM_DOMAIN,
) -> dict[str, str]:
    """A slash command's fields (form-encoded over HTTP, a JSON payload over Socket Mode)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": "directmessage" if channel_id[:1] == "D" else "general",
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or new_trigger_id(),
    }


def event_callback(
    event: dict[str, Any], *, event_id: str | None = None, team_id: str = TEAM_ID, id_prefix: str = "Ev0TEST"
) -> dict[str, Any]:
    """An Events API ``event_callback`` body."""
    now = int(time.time())
    n = next(_serial)
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": APP_ID,
        "event": {"event_ts": f"{now}.{n:06d}", **event},
        "type": "event_callback",
        "event_id": event_id or f"{id_prefix}{n:06d}",
        "event_time": now,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": "UBOT",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{n:06d}",
    }


def interactive_envelope(payload: dict[str, Any], *, team_id: str = TEAM_ID,
                         team_domain: str = TEAM_DOMAIN) -> dict[str, Any]:
    """What every interactive payload (block_actions, view_submission, ...) carries besides its own fields."""
    return {
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        **payload,
    }


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def sign(signing_secret: str, timestamp: int | str, body: bytes) -> str:
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


# --- state.values helpers: one entry per action, in Slack's shape ---------------------------------


def text_value(value: str | None) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def number_value(value: str | None) -> dict[str, Any]:
    return {"type": "number_input", "value": value}


def _option(value: str, label: str | None) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": label or value, "emoji": True}, "value": value}


def select_value(value: str | None, label: str | None = None) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": _option(value, label) if value is not None else None}


def external_select_value(value: str | None, text: str | None = None) -> dict[str, Any]:
    return {"type": "external_select", "selected_option": _option(value, text) if value is not None else None}


def multi_select_value(options: list[tuple[str, str]]) -> dict[str, Any]:
    return {"type": "multi_static_select", "selected_options": [_option(v, label) for v, label in options]}


def user_value(user_id: str | None) -> dict[str, Any]:
    return {"type": "users_select", "selected_user": user_id}


def multi_users_value(user_ids: list[str]) -> dict[str, Any]:
    return {"type": "multi_users_select", "selected_users": list(user_ids)}


def input_values(fields: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """`state.values` for inputs whose block_id equals their action_id (accessbot's convention)."""
    return {name: {name: value} for name, value in fields.items()}


class SlackSender:
    def __init__(
        self,
        base_url: str,
        signing_secret: str,
        *,
        team_id: str = TEAM_ID,
        response_url_base: str = "https://hooks.slack.com/",
        timeout: float = 10.0,
        after: Callable[[], None] | None = None,
    ) -> None:
        """``after`` runs once each answer has come back (tests pass "wait until the bot's listeners are done")."""
        self.endpoint = base_url.rstrip("/") + "/slack/events"
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.team_domain = TEAM_DOMAIN
        self.response_url_base = (
            response_url_base if response_url_base.endswith("/") else response_url_base + "/"
        )
        self.timeout = timeout
        self.after = after

    # --- building blocks --------------------------------------------------------------------------

    def new_trigger_id(self) -> str:
        return new_trigger_id()

    def _response_url(self, kind: str) -> str:
        n = next(_serial)
        return f"{self.response_url_base}{kind}/{self.team_id}/{1_000_000_000 + n}/tok{n:06d}"

    def _user(self, user_id: str) -> dict[str, Any]:
        return {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": self.team_id}

    def _interactive(self, kind: str, user_id: str, **fields: Any) -> dict[str, Any]:
        return interactive_envelope({"type": kind, "user": self._user(user_id), **fields},
                                    team_id=self.team_id, team_domain=self.team_domain)

    def _view(self, view: dict[str, Any], values: dict[str, Any] | None = None) -> dict[str, Any]:
        """The view as Slack sends it back: the recorded view plus ids and the current state.values."""
        n = next(_serial)
        view_id = view.get("id") or f"V0SEND{n:05d}"
        state_values = values if values is not None else (view.get("state") or {}).get("values", {})
        return {
            "type": "modal",
            "blocks": [],
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            "title": {"type": "plain_text", "text": "accessbot"},
            "close": None,
            "submit": None,
            "clear_on_close": False,
            "notify_on_close": False,
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_installed_team_id": self.team_id,
            "bot_id": "BBOT",
            **view,
            "id": view_id,
            "hash": view.get("hash") or f"{1_700_000_000 + n}.{n:08x}",
            "team_id": self.team_id,
            "app_id": APP_ID,
            "state": {"values": state_values},
        }

    # --- payloads ---------------------------------------------------------------------------------

    def command(
        self,
        user_id: str,
        text: str = "",
        *,
        command: str = "/access",
        trigger_id: str | None = None,
        channel_id: str = "C0GENERAL",
    ) -> Response:
        form = command_payload(
            user_id, text, response_url=self._response_url("commands"), command=command, trigger_id=trigger_id,
            channel_id=channel_id, team_id=self.team_id, team_domain=self.team_domain,
        )
        return self.raw(urlencode(form).encode(), FORM)

    def block_actions(
        self,
        user_id: str,
        action_id: str,
        *,
        value: str | None = None,
        block_id: str | None = None,
        view: dict[str, Any] | None = None,
        container: dict[str, Any] | None = None,
        channel_id: str | None = None,
        message_ts: str | None = None,
        selected_option: dict[str, Any] | None = None,
        trigger_id: str | None = None,
        message: dict[str, Any] | None = None,
        values: dict[str, Any] | None = None,
        action_type: str | None = None,
        action: dict[str, Any] | None = None,
    ) -> Response:
        """A click or selection. With `view` (a modal or the App Home) it comes from that view, with
        `values` as its state.values; with `channel_id` and `message_ts` (and optionally the `message` as
        posted) from a message, carrying a response_url. `action` adds or overrides fields of the action."""
        act: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id or action_id,
            "type": action_type or ("static_select" if selected_option is not None else "button"),
            "action_ts": f"{time.time():.6f}",
        }
        if selected_option is not None:
            act["selected_option"] = selected_option
        elif value is not None:
            act["value"] = value
        if act["type"] == "button":
            act["text"] = {"type": "plain_text", "text": action_id, "emoji": True}
        act.update(action or {})
        fields: dict[str, Any] = {"trigger_id": trigger_id or self.new_trigger_id(), "actions": [act]}
        if view is not None:
            full = self._view(view, values)
            fields["view"] = full
            fields["container"] = container or {"type": "view", "view_id": full["id"]}
            fields["state"] = full["state"]
        else:
            channel = channel_id or (container or {}).get("channel_id") or "C0GENERAL"
            ts = message_ts or (container or {}).get("message_ts") or "1700000000.000100"
            fields["container"] = container or {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel,
                "is_ephemeral": False,
            }
            fields["channel"] = {"id": channel, "name": "directmessage" if channel[:1] == "D" else "general"}
            fields["message"] = message or {
                "type": "message",
                "ts": ts,
                "text": "",
                "user": "UBOT",
                "bot_id": "BBOT",
                "blocks": [],
            }
            fields["state"] = {"values": values or {}}
            fields["response_url"] = self._response_url("actions")
        return self._interactive_post(self._interactive("block_actions", user_id, **fields))

    def block_suggestion(
        self,
        user_id: str,
        action_id: str,
        value: str,
        *,
        block_id: str | None = None,
        view: dict[str, Any] | None = None,
        values: dict[str, Any] | None = None,
    ) -> Response:
        """An options load for an external select while the user types `value`."""
        full = self._view(view or {}, values)
        payload = self._interactive(
            "block_suggestion",
            user_id,
            container={"type": "view", "view_id": full["id"]},
            action_id=action_id,
            block_id=block_id or action_id,
            value=value,
            view=full,
        )
        return self._interactive_post(payload)

    def view_submission(
        self,
        user_id: str,
        view: dict[str, Any],
        values: dict[str, dict[str, dict[str, Any]]],
        *,
        trigger_id: str | None = None,
    ) -> Response:
        payload = self._interactive(
            "view_submission",
            user_id,
            trigger_id=trigger_id or self.new_trigger_id(),
            view=self._view(view, values),
            response_urls=[],
        )
        return self._interactive_post(payload)

    def view_closed(self, user_id: str, view: dict[str, Any]) -> Response:
        payload = self._interactive("view_closed", user_id, view=self._view(view), is_cleared=False)
        return self._interactive_post(payload)

    def event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None
    ) -> Response:
        body = event_callback(event, event_id=event_id, team_id=self.team_id)
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return self.raw(json.dumps(body).encode(), JSON, headers=headers)

    def url_verification(self, challenge: str = "challenge-token") -> Response:
        body = {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
        return self.raw(json.dumps(body).encode(), JSON)

    # --- transport --------------------------------------------------------------------------------

    def _interactive_post(self, payload: dict[str, Any]) -> Response:
        return self.raw(urlencode({"payload": json.dumps(payload)}).encode(), FORM)

    def raw(
        self,
        body: bytes,
        content_type: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        sign: bool = True,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """POSTs `body` as is. Signed now unless `timestamp`/`signature` are forced or `sign` is False."""
        all_headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        if sign:
            ts = int(time.time()) if timestamp is None else timestamp
            all_headers["X-Slack-Request-Timestamp"] = str(ts)
            all_headers["X-Slack-Signature"] = signature or _sign(self.signing_secret, ts, body)
        all_headers.update(headers or {})
        request = urllib.request.Request(self.endpoint, data=body, headers=all_headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                response = Response(reply.status, reply.read(), dict(reply.headers.items()))
        except urllib.error.HTTPError as error:
            with error:
                response = Response(error.code, error.read(), dict(error.headers.items()))
        if self.after is not None:
            self.after()
        return response


_sign = sign  # `raw` has a parameter named `sign`
