"""HTTP mode (SPEC §2): ``POST /slack/events`` (Bolt), ``GET /healthz``, ``GET /metrics``; WSGI (waitress).

Without a Bolt app it serves only ``/healthz`` and ``/metrics`` (Socket Mode's ``ACCESSBOT_HEALTH_PORT``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.slack.observed import SignatureRefusals

log = logging.getLogger(__name__)

REQUESTS = Counter("accessbot_http_requests", "HTTP requests served", ["path", "status"])

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
HealthReport = Callable[[], tuple[bool, dict[str, str]]]


def wsgi_app(
    app: App | None, *, health: HealthReport = lambda: (True, {}), metrics: CollectorRegistry | None = None,
    refusals: SignatureRefusals | None = None,
) -> WsgiApp:
    slack = SlackRequestHandler(app, path="/slack/events") if app is not None else None
    refusals = refusals or SignatureRefusals()

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

            body = slack(environ, recording)
            REQUESTS.labels(path, status[0] if status else "?").inc()
            if status and status[0] == "401":
                refusals.refused(timestamp=environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", ""),
                                 signature=environ.get("HTTP_X_SLACK_SIGNATURE", ""),
                                 size=int(environ.get("CONTENT_LENGTH") or 0))
            return body
        REQUESTS.labels("other", "404").inc()
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    return serve

