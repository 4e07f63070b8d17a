"""What ``POST /slack/events`` checks before Bolt sees a request (SPEC §8, issue 10 "Ingress hardening").

In order: the size (over 1 MiB is refused with 413 before the body is read), the signature (checked on the raw
bytes before anything is parsed; an unsigned, stale or mis-signed request is refused with one log line that
holds neither the body nor a ``response_url``), then the shape of the payload (bad JSON, wrong types, missing
fields get a 400 that says what is wrong — never a 500). Only a well-formed, signed request reaches Bolt.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import SignatureVerifier

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # 1 MiB
FORM = "application/x-www-form-urlencoded"
INTERACTIVE = {"block_actions", "block_suggestion", "view_submission", "view_closed", "shortcut", "message_action"}
EVENT_ENVELOPES = {"event_callback", "url_verification", "app_rate_limited"}


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Delivery:
    body: bytes
    kind: str  # "event", "interactive:<type>", "command" or "ssl_check"


def read_body(environ: dict[str, Any]) -> bytes:
    """The raw body, at most 1 MiB (a declared or actual longer one is refused before it is read whole)."""
    declared = environ.get("CONTENT_LENGTH") or ""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if declared:
        if not declared.isdigit():
            raise Refused(400, "the Content-Length is not a number")
        if int(declared) > MAX_BODY:
            raise Refused(413, f"the body is over {MAX_BODY} bytes")
        return bytes(stream.read(int(declared)))
    body = bytes(stream.read(MAX_BODY + 1))  # no length given (chunked): read no more than the limit
    if len(body) > MAX_BODY:
        raise Refused(413, f"the body is over {MAX_BODY} bytes")
    return body


def check_signature(verifier: SignatureVerifier, environ: dict[str, Any], body: bytes) -> None:
    timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
    signature = environ.get("HTTP_X_SLACK_SIGNATURE")
    if not timestamp or not signature:
        raise Refused(401, "unsigned (no X-Slack-Signature / X-Slack-Request-Timestamp)")
    if not timestamp.isascii() or not timestamp.isdigit():
        raise Refused(400, "the X-Slack-Request-Timestamp is not a number")
    try:
        valid = verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    except UnicodeDecodeError:  # Slack signs UTF-8 text; these bytes cannot be its request
        raise Refused(400, "the body is not UTF-8") from None
    if not valid:
        raise Refused(401, "the signature does not match, or the timestamp is over 5 minutes old")


def classify(body: bytes, content_type: str) -> Delivery:
    """The delivery's kind, once its payload is known to be well formed (Refused with 400 otherwise)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "the body is not UTF-8") from None
    if content_type.split(";")[0].strip().lower() == "application/json":
        _event_envelope(_json(text, "the body"))
        return Delivery(body, "event")
    if content_type.split(";")[0].strip().lower() != FORM:
        raise Refused(400, f"unexpected Content-Type {content_type[:60]!r}")
    try:
        form = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=200)
    except ValueError:
        raise Refused(400, "the form is malformed") from None
    if "payload" in form:
        payload = _json(form["payload"][0], "payload")
        return Delivery(body, f"interactive:{_interactive(payload)}")
    if "ssl_check" in form:
        return Delivery(body, "ssl_check")
    for name in ("command", "user_id", "trigger_id"):
        if not (form.get(name) or [""])[0]:
            raise Refused(400, f"a slash command needs `{name}`")
    return Delivery(body, "command")


def _json(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise Refused(400, f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise Refused(400, f"{what} is not a JSON object")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise Refused(400, f"`{what}` must be a non-empty string")
    return value


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Refused(400, f"`{what}` must be an object")
    return value


def _event_envelope(body: dict[str, Any]) -> None:
    kind = body.get("type")
    if kind not in EVENT_ENVELOPES:
        raise Refused(400, f"unknown event envelope type {str(kind)[:40]!r}")
    if kind == "url_verification":
        _str(body.get("challenge"), "challenge")
    elif kind == "event_callback":
        _str(body.get("event_id"), "event_id")
        _str(_dict(body.get("event"), "event").get("type"), "event.type")


def _interactive(payload: dict[str, Any]) -> str:
    kind = payload.get("type")
    if kind not in INTERACTIVE:
        raise Refused(400, f"unknown interactive payload type {str(kind)[:40]!r}")
    _str(_dict(payload.get("user"), "user").get("id"), "user.id")
    if kind == "block_actions":
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions:
            raise Refused(400, "`actions` must be a non-empty list")
        for action in actions:
            _str(_dict(action, "actions[]").get("action_id"), "actions[].action_id")
            value = action.get("value")
            if value is not None and not isinstance(value, str):
                raise Refused(400, "`actions[].value` must be a string")
        _str(payload.get("trigger_id"), "trigger_id")
    elif kind == "block_suggestion":
        _str(payload.get("action_id"), "action_id")
        if not isinstance(payload.get("value", ""), str):
            raise Refused(400, "`value` must be a string")
    elif kind in ("view_submission", "view_closed"):
        view = _dict(payload.get("view"), "view")
        _str(view.get("callback_id"), "view.callback_id")
        _str(view.get("id"), "view.id")
        if not isinstance(view.get("private_metadata", ""), str):
            raise Refused(400, "`view.private_metadata` must be a string")
        state = _dict(view.get("state", {"values": {}}), "view.state")
        values = _dict(state.get("values", {}), "view.state.values")
        for block in values.values():
            for action in _dict(block, "view.state.values.*").values():
                _state_value(_dict(action, "view.state.values.*.*"))
    return str(kind)


_STATE_TYPES: dict[str, tuple[type, ...]] = {
    "value": (str,), "selected_option": (dict,), "selected_options": (list,), "selected_user": (str,),
    "selected_users": (list,), "selected_date": (str,), "selected_time": (str,), "selected_conversation": (str,),
    "selected_channel": (str,),
}


def _state_value(action: dict[str, Any]) -> None:
    """One input's value in ``view.state.values``, typed as Slack sends it (None: left empty)."""
    for name, types in _STATE_TYPES.items():
        value = action.get(name)
        if value is not None and not isinstance(value, types):
            raise Refused(400, f"`view.state.values.*.*.{name}` has the wrong type")
    for option in [action.get("selected_option"), *(action.get("selected_options") or [])]:
        if option is not None and not isinstance(_dict(option, "selected option").get("value"), str):
            raise Refused(400, "a selected option's `value` must be a string")
    if any(not isinstance(u, str) for u in action.get("selected_users") or []):
        raise Refused(400, "`selected_users` must be a list of strings")


def refused(environ: dict[str, Any], error: Refused, length: int | None) -> None:
    """One line: who, what was wrong, how big — never the body or a response_url."""
    log.warning("refused a request to /slack/events: %s (HTTP %d, from %s, %s bytes)", error.reason, error.status,
                environ.get("REMOTE_ADDR", "?"), "?" if length is None else length)
