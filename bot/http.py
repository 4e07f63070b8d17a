"""HTTP mode (SPEC §2): ``POST /slack/events`` (Bolt), ``GET /healthz``, ``GET /metrics``; WSGI (waitress)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

log = logging.getLogger(__name__)

REQUESTS = Counter("accessbot_http_requests", "HTTP requests served", ["path", "status"])

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def wsgi_app(app: App, *, healthy: Callable[[], bool] = lambda: True) -> WsgiApp:
    slack = SlackRequestHandler(app, path="/slack/events")

    def serve(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "GET" and path == "/healthz":
            ok = healthy()
            REQUESTS.labels(path, "200" if ok else "503").inc()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"ok" if ok else b"unhealthy"]
        if method == "GET" and path == "/metrics":
            REQUESTS.labels(path, "200").inc()
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [generate_latest()]
        if path == "/slack/events" and method == "POST":
            status: list[str] = []

            def recording(code: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
                status.append(code.split()[0])
                return start_response(code, headers, *exc)

            body = slack(environ, recording)
            REQUESTS.labels(path, status[0] if status else "?").inc()
            return body
        REQUESTS.labels("other", "404").inc()
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    return serve


def serve_http(settings: Any, port: int, *, host: str = "0.0.0.0") -> None:  # noqa: S104 — a server listens
    """Build everything from settings and serve until interrupted (``accessbot serve --http``)."""
    from waitress import serve

    from bot.app import create_app, slack_client
    from bot.container import build
    from bot.outbox import OutboxSender
    from bot.policy_holder import PolicyHolder
    from bot.scheduler import Scheduler, run_due_by_db_clock
    from bot.slack_directory import SlackDirectory
    from handlers.home import publish
    from store.db import Database

    db = Database(settings.database_url)
    db.upgrade()
    client = slack_client(settings)
    holder = PolicyHolder.from_file(settings.config_path)
    container = build(
        db=db,
        policy=holder,
        secrets=settings.secret_box(),
        directory=SlackDirectory(client, holder),
        slack_client=client,
    )
    app = create_app(settings, container, client)
    sender = OutboxSender(
        db,
        client,
        clock=container.clock,
        secrets=container.secrets,
        publish_home=lambda user: publish(container, client, user),
    )

    scheduler = Scheduler(
        [
            holder.reload_if_changed,
            run_due_by_db_clock(container.worker, db, container.clock),
            sender.send_due,
        ],
        settings.tick_seconds,
    )
    scheduler.start()
    try:
        serve(wsgi_app(app), host=host, port=port)
    finally:
        scheduler.shutdown(wait=False)
