"""``accessbot serve``: assemble the bot from settings and run it (Socket Mode or HTTP), with the scheduler.

The scheduler runs on every replica: due work and the outbox are claimed atomically in the database, so
replicas cooperate. SIGHUP (and a change of the file) reloads the config; a file that does not validate is
refused, logged and posted to the audit channel, and the old configuration stays in force.
"""

from __future__ import annotations

import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.settings import Settings

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.container import Container
    from bot.jobs.scheduler import Scheduler

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    container: Container
    app: App
    scheduler: Scheduler  # due work: expiries, reminders, escalations, retries, automatic flows
    outbox: Scheduler  # Slack messages
    client: WebClient
    oncall: Scheduler | None = None  # re-reads on-call schedules from PagerDuty / Opsgenie

    def start(self) -> None:
        """Start ticking; the first ticks run at once, so everything overdue at start is done immediately."""
        self.scheduler.start()
        self.outbox.start()
        if self.oncall is not None:
            self.oncall.start()

    def running(self) -> bool:
        return self.scheduler.running and self.outbox.running

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)
        self.outbox.shutdown(wait=False)
        if self.oncall is not None:
            self.oncall.shutdown(wait=False)


def assemble(settings: Settings) -> Runtime:
    from bot.container import build, refresh_connectors, unavailable_integrations
    from bot.jobs.scheduler import DatabaseClock, Scheduler, run_due_by_db_clock
    from bot.lifecycle.oncall import Endpoints, OncallReadings
    from bot.lifecycle.policy_holder import PolicyHolder
    from bot.slack.app import create_app, outbox_sender, slack_client
    from bot.slack.directory import SlackDirectory
    from store.db import Database

    if settings.slack_bot_token is None:
        raise ValueError("SLACK_BOT_TOKEN is not set (xoxb-…); see README, “Install in your workspace”")
    db = Database(settings.database_url)
    db.upgrade()
    client = slack_client(settings)
    holder = PolicyHolder.from_file(settings.config_path)
    clock = DatabaseClock(db)
    clock.sync()
    oncall = OncallReadings(holder, clock, env=os.environ,
                            endpoints=Endpoints(settings.pagerduty_api_url, settings.opsgenie_api_url))
    directory = SlackDirectory(client, holder, oncall=oncall)
    directory.refresh_due()  # the workspace's users and groups, once (a failure: the first lookup loads it)
    container = build(db=db, policy=holder, clock=clock, secrets=settings.secret_box(),
                      directory=directory, slack_client=client, env=os.environ,
                      worker_threads=settings.worker_threads)
    discover(container)

    def to_audit_channel(text: str) -> None:
        channel = holder.current.config.audit_channel
        if channel:
            try:
                client.chat_postMessage(channel=channel, text=text)
            except Exception:  # noqa: BLE001 — the audit channel being unreachable must not stop the bot
                log.exception("could not post to the audit channel")

    def refused(error: Exception) -> None:
        to_audit_channel(":warning: accessbot refused a new accessbot.yml; the previous configuration stays in "
                         f"force.\n```{str(error)[:2500]}```")

    def reloaded() -> None:
        rebuilt = refresh_connectors(container, os.environ, client)
        if rebuilt:
            log.info("connectors rebuilt after the reload: %s", ", ".join(rebuilt))
        discover(container)
        report_unavailable()

    def report_unavailable() -> None:
        for name, reason in unavailable_integrations(container.connectors).items():
            to_audit_channel(f":warning: integration `{name}` is unavailable: {reason}. Its grants and revokes "
                             "are retried until it is fixed (then reload the config with SIGHUP).")

    report_unavailable()
    # connector calls a click starts (approve, revoke now, MFA confirmation) run after Slack gets its answer
    container.worker.background = ThreadPoolExecutor(settings.worker_threads, thread_name_prefix="connector")
    container.worker.reconciler.every = timedelta(seconds=settings.reconcile_seconds)
    container.worker.reconciler.ensure_scheduled()  # automatic flows: the first pass runs at the first tick
    holder.on_reloaded.append(reloaded)
    holder.on_reloaded.append(container.worker.reconciler.hasten)
    holder.on_refused.append(refused)
    app = create_app(settings, container, client)
    sender = outbox_sender(container, client)
    scheduler = Scheduler(
        [clock.sync, holder.reload_if_changed, run_due_by_db_clock(container.worker, db, clock)],
        settings.tick_seconds,
    )
    # the outbox ticks on its own thread: Slack's rate limits and latency never hold up an expiry
    outbox = Scheduler([sender.send_due], settings.tick_seconds)
    if hasattr(signal, "SIGHUP"):
        try:
            signal.signal(signal.SIGHUP, lambda *_: holder.request_reload())  # the next tick reloads
        except ValueError:  # not the main thread (tests)
            pass
    # on-call from the incident tools, re-read every minute on its own thread (a slow API never delays due work)
    refresher = Scheduler([oncall.refresh_due, directory.refresh_due], 5.0)
    return Runtime(container, app, scheduler, outbox, client, refresher)


def discover(container: Container) -> None:
    from bot.container import discover_resources

    try:
        counts = discover_resources(container)
        if counts:
            log.info("discovered resources: %s", counts)
    except Exception:  # noqa: BLE001 — discovery failing must not keep the bot down
        log.exception("resource discovery failed; static resources stay available")


def serve(settings: Settings, *, http: bool = False, host: str = "0.0.0.0", port: int = 3000) -> int:  # noqa: S104
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    socket_mode = settings.slack_app_token is not None and not http
    if not socket_mode and settings.slack_signing_secret is None:
        raise ValueError("SLACK_SIGNING_SECRET is required in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)")
    runtime = assemble(settings)
    runtime.start()
    try:
        if socket_mode:
            assert settings.slack_app_token is not None
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            log.info("accessbot: Socket Mode")
            SocketModeHandler(runtime.app, settings.slack_app_token.get_secret_value()).start()
        else:
            from waitress import serve as waitress_serve

            from bot.slack.http import wsgi_app

            log.info("accessbot: HTTP on %s:%d (POST /slack/events, GET /healthz, GET /metrics)", host, port)
            from bot.metrics import state_metrics

            metrics = state_metrics(runtime.container.db, runtime.container.clock)
            secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
            waitress_serve(wsgi_app(runtime.app, healthy=runtime.running, metrics=metrics, signing_secret=secret),
                           host=host, port=port, threads=8)
    finally:
        runtime.shutdown()
    return 0
