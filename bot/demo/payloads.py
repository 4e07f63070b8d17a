"""What the page's clicks become: Slack's payloads of the real wire formats, signed, POSTed to the bot.

Signatures are Slack's: HMAC-SHA256 of ``v0:{timestamp}:{body}`` with the signing secret the demo generated,
sent as ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature``. The bot verifies them like any Slack request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from bot.demo.workspace import APP_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID

FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Reply:
    """The bot's HTTP answer (the ack): status and body (JSON when there is one)."""

    status: int
    body: Any


def sign(signing_secret: str, timestamp: str, body: bytes) -> str:
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def post(endpoint: str, signing_secret: str, body: bytes, content_type: str, timeout: float = 30.0) -> Reply:
    timestamp = str(int(time.time()))
    headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": timestamp,
               "X-Slack-Signature": sign(signing_secret, timestamp, body),
               "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots; accessbot demo)"}
    request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 — loopback only
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        with error:
            status, raw = error.code, error.read()
    try:
        parsed: Any = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode("utf-8", errors="replace")
    return Reply(status, parsed)


def _user(user_id: str) -> dict[str, Any]:
    name = user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": TEAM_ID}


def envelope(kind: str, user_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "api_app_id": APP_ID, "token": "demo-verification-token",
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN}, "enterprise": None, "is_enterprise_install": False,
            "user": _user(user_id), **fields}


def form(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def command(user_id: str, text: str, *, channel_id: str, trigger_id: str, response_url: str) -> bytes:
    return urlencode({
        "token": "demo-verification-token", "team_id": TEAM_ID, "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id, "channel_name": "directmessage" if channel_id[:1] == "D" else channel_id,
        "user_id": user_id, "user_name": user_id.lower(), "command": "/access", "text": text,
        "api_app_id": APP_ID, "is_enterprise_install": "false", "response_url": response_url,
        "trigger_id": trigger_id,
    }).encode()


def view_with_state(view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The view as Slack sends it back in a payload: the stored view with the user's current state.values."""
    return {**{k: v for k, v in view.items() if k != "_user"}, "state": {"values": values}}


def block_action(action: dict[str, Any]) -> dict[str, Any]:
    return {"action_ts": f"{time.time():.6f}", **action}


def view_action(user_id: str, view: dict[str, Any], values: dict[str, Any], action: dict[str, Any],
                trigger_id: str) -> dict[str, Any]:
    full = view_with_state(view, values)
    return envelope("block_actions", user_id, trigger_id=trigger_id, actions=[block_action(action)], view=full,
                    container={"type": "view", "view_id": view["id"]}, state=full["state"])


def message_action(user_id: str, channel_id: str, message: dict[str, Any], action: dict[str, Any],
                   trigger_id: str, response_url: str, *, is_ephemeral: bool = False,
                   channel_name: str | None = None) -> dict[str, Any]:
    return envelope(
        "block_actions", user_id, trigger_id=trigger_id, actions=[block_action(action)],
        container={"type": "message", "message_ts": message["ts"], "channel_id": channel_id,
                   "is_ephemeral": is_ephemeral,
                   **({"thread_ts": message["thread_ts"]} if message.get("thread_ts") else {})},
        channel={"id": channel_id, "name": channel_name or ("directmessage" if channel_id[:1] == "D" else channel_id)},
        message={k: v for k, v in message.items() if k not in ("at",)}, state={"values": {}},
        response_url=response_url)


def suggestion(user_id: str, view: dict[str, Any], values: dict[str, Any], action_id: str, block_id: str,
               value: str) -> dict[str, Any]:
    return envelope("block_suggestion", user_id, container={"type": "view", "view_id": view["id"]},
                    action_id=action_id, block_id=block_id, value=value, view=view_with_state(view, values))


def submission(user_id: str, view: dict[str, Any], values: dict[str, Any], trigger_id: str) -> dict[str, Any]:
    return envelope("view_submission", user_id, trigger_id=trigger_id, view=view_with_state(view, values),
                    response_urls=[])


def closed(user_id: str, view: dict[str, Any]) -> dict[str, Any]:
    return envelope("view_closed", user_id, view=view_with_state(view, {}), is_cleared=False)


def event(event: dict[str, Any], serial: int) -> bytes:
    now = int(time.time())
    return json.dumps({
        "token": "demo-verification-token", "team_id": TEAM_ID, "api_app_id": APP_ID,
        "event": {"event_ts": f"{now}.{serial:06d}", **event}, "type": "event_callback",
        "event_id": f"Ev0DEMO{serial:06d}", "event_time": now,
        "authorizations": [{"enterprise_id": None, "team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False, "event_context": f"4-demo-{serial:06d}",
    }).encode()
