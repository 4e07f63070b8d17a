"""``accessbot serve``: assemble the bot from settings and run it (Socket Mode or HTTP), with the scheduler.

The scheduler runs on every replica: due work and the outbox are claimed atomically in the database, so
replicas cooperate. SIGHUP (and a change of the file) reloads the config; a file that does not validate is
refused, logged and posted to the audit channel, and the old configuration stays in force.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from typing import Any

from bot.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    container: Any
    app: Any
    scheduler: Any
    client: Any


def assemble(settings: Settings) -> Runtime:
    from bot.app import create_app, slack_client
    from bot.container import build, discover_resources
    from bot.outbox import OutboxSender
    from bot.policy_holder import PolicyHolder
    from bot.scheduler import Scheduler, run_due_by_db_clock
    from bot.slack_directory import SlackDirectory
    from handlers.home import publish
    from store.db import Database

    if settings.slack_bot_token is None:
        raise ValueError("SLACK_BOT_TOKEN is not set (xoxb-…); see README, “Install in your workspace”")
    db = Database(settings.database_url)
    db.upgrade()
    client = slack_client(settings)
    holder = PolicyHolder.from_file(settings.config_path)
    container = build(db=db, policy=holder, secrets=settings.secret_box(),
                      directory=SlackDirectory(client, holder), slack_client=client, env=os.environ)
    try:
        counts = discover_resources(container)
        if counts:
            log.info("discovered resources: %s", counts)
    except Exception:  # noqa: BLE001 — discovery failing must not keep the bot down
        log.exception("resource discovery failed; static resources stay available")

    def refused(error: Exception) -> None:
        channel = holder.current.config.audit_channel
        if channel:
            text = f":warning: accessbot refused a new accessbot.yml; the previous configuration stays in force.\n```{str(error)[:2500]}```"
            try:
                client.chat_postMessage(channel=channel, text=text)
            except Exception:  # noqa: BLE001
                log.exception("could not post the refused config to the audit channel")

    holder.on_refused.append(refused)
    app = create_app(settings, container, client)
    sender = OutboxSender(db, client, clock=container.clock, secrets=container.secrets,
                          publish_home=lambda user: publish(container, client, user))
    scheduler = Scheduler(
        [holder.reload_if_changed, run_due_by_db_clock(container.worker, db, container.clock), sender.send_due],
        settings.tick_seconds,
    )
    if hasattr(signal, "SIGHUP"):
        try:
            signal.signal(signal.SIGHUP, lambda *_: holder.reload())
        except ValueError:  # not the main thread (tests)
            pass
    return Runtime(container, app, scheduler, client)


def serve(settings: Settings, *, http: bool = False, host: str = "0.0.0.0", port: int = 3000) -> int:  # noqa: S104
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runtime = assemble(settings)
    runtime.scheduler.start()  # runs everything overdue at once, then ticks
    try:
        if settings.slack_app_token is not None and not http:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            log.info("accessbot: Socket Mode")
            SocketModeHandler(runtime.app, settings.slack_app_token.get_secret_value()).start()
        else:
            if settings.slack_signing_secret is None:
                raise ValueError("SLACK_SIGNING_SECRET is required in HTTP mode")
            from waitress import serve as waitress_serve

            from bot.http import wsgi_app

            log.info("accessbot: HTTP on %s:%d (POST /slack/events, GET /healthz, GET /metrics)", host, port)
            waitress_serve(wsgi_app(runtime.app, healthy=lambda: runtime.scheduler.running), host=host, port=port,
                           threads=8)
    finally:
        runtime.scheduler.shutdown(wait=False)
    return 0
