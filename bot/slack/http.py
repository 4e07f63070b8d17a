"""HTTP mode (SPEC §2): ``POST /slack/events`` (Bolt), ``GET /healthz``, ``GET /metrics``; WSGI (waitress).

``POST /slack/events`` goes through :mod:`bot.slack.ingress` first (size, signature, shape), so Bolt only sees
signed, well-formed requests; a request no listener takes gets Slack's empty 200 for events and block actions
(Slack would retry or show an error otherwise) and a 400 for anything else — never a 500 for bad input. A request
whose listener did not call ``ack()`` within Bolt's 3 s (an overloaded or stuck bot) gets a 503 and a warning: it
is the bot's failure, not Slack's, and an alert on 5xx should see it. A refused
signature is logged as one line without the body, at most once a minute (:class:`bot.slack.observed.SignatureRefusals`).

Without a Bolt app it serves only ``/healthz`` and ``/metrics`` (Socket Mode's ``ACCESSBOT_HEALTH_PORT``).
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier

from bot.slack.ingress import Refused, classify, read_body, refused
from bot.slack.ingress import check_signature as check_signed
from bot.slack.observed import SignatureRefusals

log = logging.getLogger(__name__)

REQUESTS = Counter("accessbot_http_requests", "HTTP requests served", ["path", "status"])

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
HealthReport = Callable[[], tuple[bool, dict[str, str]]]
ACK_TIMEOUT = 3.0  # seconds Bolt waits for a listener's ack() before it answers as if no listener took the request


def wsgi_app(
    app: App | None, *, health: HealthReport = lambda: (True, {}), metrics: CollectorRegistry | None = None,
    signing_secret: str | None = None, refusals: SignatureRefusals | None = None,
) -> WsgiApp:
    """The WSGI app. ``signing_secret`` (HTTP mode always has one) is checked before the body is parsed."""
    slack = SlackRequestHandler(app, path="/slack/events") if app is not None else None
    verifier = SignatureVerifier(signing_secret) if signing_secret else None
    refusals = refusals or SignatureRefusals()

    def events(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body: bytes | None = None
        try:
            body = read_body(environ)
            if verifier is not None:
                check_signed(verifier, environ, body)
            delivery = classify(body, environ.get("CONTENT_TYPE") or "")
        except Refused as error:
            if error.status == 401:  # unsigned or mis-signed: anybody can send these, so rate-limited
                refusals.refused(timestamp=environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", ""),
                                 signature=environ.get("HTTP_X_SLACK_SIGNATURE", ""),
                                 size=len(body) if body is not None else int(environ.get("CONTENT_LENGTH") or 0))
            else:
                refused(environ, error, None if body is None else len(body))
            start_response(_status(error.status), [("Content-Type", "text/plain; charset=utf-8")])
            return [error.reason.encode()]
        environ = {**environ, "wsgi.input": io.BytesIO(delivery.body), "CONTENT_LENGTH": str(len(delivery.body))}
        answered: list[Any] = []

        def capture(code: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            answered[:] = [code, headers]
            return lambda data: None

        assert slack is not None
        started = time.monotonic()
        out = b"".join(slack(environ, capture))
        code, headers = answered or ["500 Internal Server Error", []]
        if code.startswith("404") and time.monotonic() - started >= ACK_TIMEOUT:  # Bolt gave up on the ack
            log.warning("Slack's %s request was not acknowledged within %.0f s (the bot is overloaded, or a listener "
                        "is stuck before its ack); Slack shows its user an error", delivery.kind, ACK_TIMEOUT)
            code, headers, out = "503 Service Unavailable", [], b"not acknowledged in time"
        elif code.startswith("404"):  # no listener for it (an unknown callback or action id, an unknown event)
            quiet = delivery.kind in ("event", "interactive:block_actions")
            code, headers, out = ("200 OK", [], b"") if quiet else ("400 Bad Request", [], b"nothing handles this")
        start_response(code, headers or [("Content-Type", "text/plain; charset=utf-8")])
        return [out]

    def serve(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "GET" and path == "/healthz":
            ok, checks = health()
            REQUESTS.labels(path, "200" if ok else "503").inc()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [json.dumps({"status": "ok" if ok else "unhealthy", "checks": checks}).encode()]
        if method == "GET" and path == "/metrics":
            REQUESTS.labels(path, "200").inc()
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [generate_latest() + (generate_latest(metrics) if metrics is not None else b"")]
        if slack is not None and path == "/slack/events" and method == "POST":
            status: list[str] = []

            def recording(code: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
                status.append(code.split()[0])
                return start_response(code, headers, *exc)

            body = events(environ, recording)
            REQUESTS.labels(path, status[0] if status else "?").inc()
            return body
        REQUESTS.labels("other", "404").inc()
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    return serve


def _status(code: int) -> str:
    return {400: "400 Bad Request", 401: "401 Unauthorized", 413: "413 Content Too Large"}.get(code, f"{code} Error")

