"""The demo's HTTP server (WSGI): the page, its JSON endpoints, and what the bot calls (Web API, hooks, webhooks).

| path | who calls it | what |
|---|---|---|
| ``GET /``, ``GET /static/…`` | the browser | the page (package data, no build step) |
| ``GET /demo/state?user=U&since=V&log_after=N`` | the page | a snapshot; waits up to 20 s for a change after V |
| ``POST /demo/act`` | the page | a person's action, sent to the bot as a signed Slack payload |
| ``POST /demo/time`` | the page | ``{"do": "plus_hour" \\| "expire" \\| "escalate"}`` |
| ``/api/<method>`` | the bot | the Slack Web API (:mod:`bot.demo.webapi`) |
| ``POST /hooks/<id>`` | the bot | ``response_url`` posts |
| ``POST /upload/<file>``, ``GET /files/<file>`` | the bot, the page | file uploads (the MFA QR code) |
| ``POST /webhooks/<name>`` | the webhook connector | signed grant/extend/revoke calls |
"""

from __future__ import annotations

import json
import logging
import mimetypes
from collections.abc import Callable, Iterable
from datetime import timedelta
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

from bot.demo import webapi
from bot.demo.actions import PageActions, PageError
from bot.demo.recording import receive_webhook
from bot.demo.snapshot import snapshot
from bot.demo.timecontrol import advance, jump_to_next
from bot.demo.workspace import SlackError, Workspace
from bot.runtime import Runtime

log = logging.getLogger(__name__)
StartResponse = Callable[..., Any]
MAX_BODY = 1 << 20
LONG_POLL_SECONDS = 20.0


class BadRequest(Exception):
    pass


class DemoWeb:
    def __init__(self, workspace: Workspace, *, webhook_secret: str) -> None:
        self.ws = workspace
        self.webhook_secret = webhook_secret
        self.runtime: Runtime | None = None
        self.actions: PageActions | None = None

    def attach(self, runtime: Runtime, actions: PageActions) -> None:
        self.runtime, self.actions = runtime, actions

    # --- WSGI ---------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", "/"), environ.get("REQUEST_METHOD", "GET")
        try:
            status, content_type, body = self.route(method, path, environ)
        except BadRequest as exc:
            status, content_type, body = 400, "application/json", json.dumps({"error": str(exc)}).encode()
        except PageError as exc:
            status, content_type, body = 409, "application/json", json.dumps({"error": str(exc)}).encode()
        except Exception:  # noqa: BLE001 — the page shows a message; the details go to the log
            log.exception("demo: %s %s failed", method, path)
            status, content_type = 500, "application/json"
            body = json.dumps({"error": "the demo failed handling that; see its terminal"}).encode()
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 409: "Conflict",
                  500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "")
        start_response(f"{status} {reason}", [("Content-Type", content_type), ("Content-Length", str(len(body))),
                                             ("Cache-Control", "no-store")])
        return [body]

    def route(self, method: str, path: str, environ: dict[str, Any]) -> tuple[int, str, bytes]:
        if path.startswith("/api/"):
            return self.web_api(path[5:], environ)
        if method == "GET" and path in ("/", "/index.html"):
            return self.static("index.html")
        if method == "GET" and path.startswith("/static/"):
            return self.static(path[len("/static/"):])
        if method == "POST" and path.startswith("/hooks/"):
            return self.hook(path[len("/hooks/"):], environ)
        if method == "POST" and path.startswith("/webhooks/"):
            headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
            status, answer = receive_webhook(self.ws, path[len("/webhooks/"):], self.webhook_secret, headers,
                                             _body(environ))
            return status, "application/json", answer
        if method == "POST" and path.startswith("/upload/"):
            found = webapi.receive_upload(self.ws, path[len("/upload/"):], _body(environ))
            return (200, "text/plain", b"OK") if found else (404, "text/plain", b"file not found")
        if method == "GET" and path.startswith("/files/"):
            upload = self.ws.uploads.get(path[len("/files/"):])
            if upload is None or upload.data is None:
                return 404, "text/plain", b"file not found"
            return 200, mimetypes.guess_type(upload.filename)[0] or "application/octet-stream", upload.data
        if method == "GET" and path == "/healthz":
            return 200, "text/plain", b"ok"
        if path.startswith("/demo/"):
            if self.runtime is None or self.actions is None:
                return 503, "application/json", b'{"error": "the bot is starting"}'
            if method == "GET" and path == "/demo/state":
                return self.state(dict(parse_qsl(environ.get("QUERY_STRING", ""))))
            if method == "POST" and path == "/demo/act":
                return _json(self.act(self.actions, _json_body(environ)))
            if method == "POST" and path == "/demo/time":
                return _json(self.time(self.runtime, _json_body(environ)))
        return 404, "text/plain", b"not found"

    # --- endpoints ----------------------------------------------------------------------------------------

    def web_api(self, name: str, environ: dict[str, Any]) -> tuple[int, str, bytes]:
        args: dict[str, Any] = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        raw = _body(environ)
        if raw:
            if str(environ.get("CONTENT_TYPE", "")).startswith("application/json"):
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    return _json({"ok": False, "error": "invalid_json"})
                args.update(parsed if isinstance(parsed, dict) else {})
            else:
                args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        header = str(environ.get("HTTP_AUTHORIZATION") or "")
        token = header[7:] if header.startswith("Bearer ") else args.pop("token", None)
        args.pop("token", None)
        return _json(webapi.call(self.ws, name, args, token))

    def hook(self, hook: str, environ: dict[str, Any]) -> tuple[int, str, bytes]:
        assert self.actions is not None
        try:
            body = json.loads(_body(environ) or b"{}")
        except ValueError:
            return 400, "text/plain", b"invalid_payload"
        try:
            found = self.actions.respond(hook, body if isinstance(body, dict) else {})
        except SlackError as exc:
            return 404, "text/plain", exc.error.encode()
        return (200, "text/plain", b"ok") if found else (404, "text/plain", b"no_such_hook")

    def static(self, name: str) -> tuple[int, str, bytes]:
        if not name or "/" in name or name.startswith("."):
            return 404, "text/plain", b"not found"
        item = resources.files("bot.demo").joinpath("static", name)
        if not item.is_file():
            return 404, "text/plain", b"not found"
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or name.endswith(".js"):
            content_type += "; charset=utf-8"
        return 200, content_type, item.read_bytes()

    def state(self, query: dict[str, str]) -> tuple[int, str, bytes]:
        user = query.get("user") or ""
        if user and user not in self.ws.users:
            raise BadRequest(f"no user {user}")
        since = _int(query.get("since"), -1)
        if since == self.ws.version:
            self.ws.wait_for_change(since, LONG_POLL_SECONDS)
        return _json(snapshot(self.ws, self.runtime, user, _int(query.get("log_after"), 0)))

    def act(self, actions: PageActions, body: dict[str, Any]) -> dict[str, Any]:
        user = str(body.get("user") or "")
        if user not in self.ws.users:
            raise BadRequest("pick who you are first")
        match body.get("type"):
            case "command":
                text = str(body.get("text") or "").strip()
                if text != "/access" and not text.startswith("/access "):
                    raise BadRequest("the bot has one command: /access (try /access help)")
                actions.command(user, text[len("/access"):].strip(), str(body.get("channel") or "D" + user))
            case "click":
                actions.click(user, _dict(body, "container"), _dict(body, "action"), _dict(body, "values"))
            case "suggest":
                return actions.suggest(user, str(body.get("view_id")), str(body.get("action_id")),
                                       str(body.get("block_id")), str(body.get("value") or ""), _dict(body, "values"))
            case "submit":
                return actions.submit(user, str(body.get("view_id")), _dict(body, "values"))
            case "close":
                actions.close(user, str(body.get("view_id")))
            case "home":
                actions.open_home(user)
            case other:
                raise BadRequest(f"unknown action {other!r}")
        return {}

    def time(self, runtime: Runtime, body: dict[str, Any]) -> dict[str, Any]:
        clock: Any = runtime.container.clock
        db = runtime.container.db
        match body.get("do"):
            case "plus_hour":
                advance(clock, timedelta(hours=1))
                message = "An hour passed."
            case "expire" | "escalate" as kind:
                due = jump_to_next(db, clock, kind)
                message = (f"Nothing is waiting to {kind}." if due is None
                           else f"The clock moved to {due:%H:%M:%S} UTC, when the next {kind} was due.")
            case other:
                raise BadRequest(f"unknown time control {other!r}")
        self.ws.record("time", "clock", message, {"now": clock.now().isoformat()})
        return {"message": message, "now": clock.now().isoformat()}


def _body(environ: dict[str, Any]) -> bytes:
    length = _int(environ.get("CONTENT_LENGTH"), 0)
    if length > MAX_BODY:
        raise BadRequest("body too large")
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _json_body(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        parsed = json.loads(_body(environ) or b"{}")
    except ValueError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(parsed, dict):
        raise BadRequest("the body is not a JSON object")
    return parsed


def _dict(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key) or {}
    if not isinstance(value, dict):
        raise BadRequest(f"{key} must be an object")
    return value


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _json(value: Any) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps(value, default=str).encode()
