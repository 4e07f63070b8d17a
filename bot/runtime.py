"""``accessbot serve``: assemble the bot from settings and run it (Socket Mode or HTTP), with the scheduler.

The scheduler runs on every replica: due work and the outbox are claimed atomically in the database, so
replicas cooperate. SIGHUP (and a change of the file) reloads the config; a file that does not validate is
refused, logged and posted to the audit channel, and the old configuration stays in force.

Before anything starts, :mod:`bot.startup` checks tokens, config, database and Slack (one line, exit 2 on a
failure). SIGTERM stops the bot as Ctrl-C does (:mod:`bot.shutdown`): work in progress is drained, leases are
handed back, exit 0. ``/healthz`` and ``/metrics`` are served in both modes (:mod:`bot.health`).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.health import OK, Health
from bot.settings import Settings
from bot.shutdown import DrainingExecutor, Stopping, drain_and_release
from bot.startup import Checked, StartupError, check_before_start
from store.leases import LeaseTracker

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient
    from waitress.server import BaseWSGIServer

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
    background: DrainingExecutor  # connector calls a click started
    leases: LeaseTracker
    slack_connection: Callable[[], str] = field(default=lambda: OK)  # Socket Mode sets it
    # re-read on-call schedules (PagerDuty / Opsgenie) and the Slack directory, each on its own thread: a directory
    # load waiting out Slack's rate limit for minutes never holds up who is on call
    refreshers: tuple[Scheduler, ...] = ()
    interrupt: tuple[Callable[[], None], ...] = ()  # at stop: a directory load waiting out a rate limit

    def start(self) -> None:
        """Start ticking; the first ticks run at once, so everything overdue at start is done immediately."""
        self.scheduler.start()
        self.outbox.start()
        for refresher in self.refreshers:
            refresher.start()

    def running(self) -> bool:
        return self.scheduler.running and self.outbox.running

    def schedulers(self) -> dict[str, Scheduler]:
        return {"due_work": self.scheduler, "outbox": self.outbox}

    def health(self) -> Health:
        return Health(self.container.db, [self.scheduler, self.outbox], lambda: self.slack_connection())

    def stop(self, deadline: float) -> bool:
        """Drain the work in progress until ``deadline`` (monotonic) and hand back the leases; True if all finished."""
        for refresher in self.refreshers:
            refresher.shutdown(wait=False)
        for interrupt in self.interrupt:
            interrupt()
        finished = drain_and_release([self.scheduler, self.outbox, self.background], self.leases, deadline)
        self.container.db.dispose()
        return finished

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)
        self.outbox.shutdown(wait=False)
        for refresher in self.refreshers:
            refresher.shutdown(wait=False)
        for interrupt in self.interrupt:
            interrupt()


def assemble(settings: Settings, client: WebClient | None = None, *, checked: Checked | None = None) -> Runtime:
    """The serving bot, not yet started.

    ``checked``: what the start-up checks (:func:`bot.startup.check_before_start`) found: the config they
    validated is the one put in force (not read again), the database they migrated is not migrated again, the
    encryption key they checked is used, and ``auth.test``'s answer tells the app who it is. Each step's time is
    logged at DEBUG (``start-up: …``).
    """
    from bot.container import build, refresh_connectors, unavailable_integrations
    from bot.jobs.scheduler import DatabaseClock, Scheduler, run_due_by_db_clock
    from bot.lifecycle.oncall import Endpoints, OncallReadings
    from bot.lifecycle.policy_holder import PolicyHolder, settle_memory
    from bot.slack.app import create_app, outbox_sender, slack_client, warm_up
    from bot.slack.directory import SlackDirectory
    from bot.slack.homes import HomeViewers
    from bot.slack.roster_snapshots import RosterSnapshots
    from store.db import Database, background_thread

    if settings.slack_bot_token is None:
        raise ValueError("SLACK_BOT_TOKEN is not set (xoxb-…); see README, “Install in your workspace”")
    step = _Steps()
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    if checked is None:  # the start-up checks migrated it
        db.upgrade()
    leases = LeaseTracker(db)  # before the first claim
    client = client or slack_client(settings)
    step.done("database")
    if checked is None:
        holder = PolicyHolder.from_file(settings.config_path)
    else:
        holder = PolicyHolder.from_config(checked.config, settings.config_path, mtime=checked.config_mtime)
        settle_memory()
    step.done(f"policy compiled ({len(holder.current.flows)} flows)")
    clock = DatabaseClock(db)
    clock.sync()
    oncall = OncallReadings(holder, clock, env=os.environ,
                            endpoints=Endpoints(settings.pagerduty_api_url, settings.opsgenie_api_url))
    directory = SlackDirectory(client, holder, oncall=oncall, snapshots=RosterSnapshots(db, clock.now))
    # the workspace's users and groups: from the last load's snapshot (Slack read again in the background), else
    # read now (a failure: the first lookup loads it)
    directory.start()
    step.done("Slack directory loaded")
    secrets = checked.secrets if checked is not None else settings.secret_box()
    container = build(db=db, policy=holder, clock=clock, secrets=secrets,
                      directory=directory, slack_client=client, env=os.environ,
                      worker_threads=settings.worker_threads)
    step.done("container built (connectors, services, worker)")
    discover(container)
    step.done("resources discovered")

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
    background = DrainingExecutor(settings.worker_threads, thread_name_prefix="connector",
                                  initializer=background_thread)
    container.worker.background = background
    container.worker.reconciler.every = timedelta(seconds=settings.reconcile_seconds)
    container.worker.reconciler.ensure_scheduled()  # automatic flows: the first pass runs at the first tick
    holder.on_reloaded.append(reloaded)
    holder.on_reloaded.append(container.worker.reconciler.hasten)
    holder.on_refused.append(refused)
    viewers = HomeViewers()  # only the App Homes people look at are republished after changes
    app = create_app(settings, container, client, auth=checked.auth if checked is not None else None,
                     viewers=viewers)

    def prepare() -> None:  # the approver candidates and the picker, off the request path (after a reload too)
        threading.Thread(target=warm_up, args=(container, app.answering.step_aside), name="warm-up",
                         daemon=True).start()

    prepare()
    holder.on_reloaded.append(prepare)
    sender = outbox_sender(container, client, viewers=viewers)
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
    # on-call from the incident tools, re-read every minute, and the Slack directory, re-read every hour (at once
    # after a start from its snapshot), each on its own thread: a slow API never delays due work or the other
    refreshers = (Scheduler([oncall.refresh_due], 5.0), Scheduler([directory.refresh_due], 5.0))
    step.done("app and schedulers created")
    return Runtime(container, app, scheduler, outbox, client, background, leases, refreshers=refreshers,
                   interrupt=(directory.stop,))


class _Steps:
    """``start-up: STEP in N s (CPU N s)`` at DEBUG, each step timed from the end of the one before."""

    def __init__(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def done(self, step: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        log.debug("start-up: %s in %.2f s (CPU %.2f s)", step, wall - self._wall, cpu - self._cpu)
        self._wall, self._cpu = wall, cpu


def discover(container: Container) -> None:
    from bot.container import discover_resources

    try:
        counts = discover_resources(container)
        if counts:
            log.info("discovered resources: %s", counts)
    except Exception:  # noqa: BLE001 — discovery failing must not keep the bot down
        log.exception("resource discovery failed; static resources stay available")


def serve(settings: Settings, *, http: bool = False, host: str = "0.0.0.0", port: int = 3000) -> int:  # noqa: S104
    """Run until SIGTERM or Ctrl-C; returns 0 after a clean stop. Raises :class:`StartupError` before starting."""
    from bot.lifecycle.policy_holder import limit_malloc_arenas
    from bot.logs import configure
    from bot.slack.app import slack_client
    from bot.version import version

    limit_malloc_arenas()  # before the listener threads: they would each get an arena of their own
    configure(settings.log_level, settings.log_format)
    stopping = Stopping()
    stopping.install()
    socket_mode = settings.slack_app_token is not None and not http
    client = slack_client(settings)
    step = _Steps()
    checked = check_before_start(settings, socket_mode=socket_mode, client=client)
    step.done("checks passed (tokens, config, database, Slack)")
    runtime = assemble(settings, client, checked=checked)
    runtime.start()
    auth = checked.auth
    started = f"accessbot {version()} ({auth.get('team')} as {auth.get('user')})"
    finished = False
    try:
        if socket_mode:
            _serve_socket_mode(runtime, settings, host, started)
        else:
            _serve_http(runtime, settings, host, port, started)
    except KeyboardInterrupt:
        pass
    finally:
        finished = runtime.stop(stopping.deadline())
    if not finished:  # a thread is still in a connector call: its work was handed back, do not wait for it
        logging.shutdown()
        os._exit(0)
    return 0


def _serve_http(runtime: Runtime, settings: Settings, host: str, port: int, started: str) -> None:
    from waitress import create_server

    from bot.metrics import state_metrics
    from bot.slack.http import wsgi_app

    metrics = state_metrics(runtime.container.db, runtime.container.clock, runtime.schedulers())
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    server = create_server(wsgi_app(runtime.app, health=runtime.health().report, metrics=metrics,
                                    signing_secret=secret), host=host, port=port, threads=8)
    log.info("%s: HTTP on %s:%d (POST /slack/events, GET /healthz, GET /metrics)", started, host, port)
    server.run()  # returns on Ctrl-C/SIGTERM once the requests in progress are answered (waitress: up to 5 s)


def _serve_socket_mode(runtime: Runtime, settings: Settings, host: str, started: str) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk.errors import SlackApiError

    assert settings.slack_app_token is not None
    handler = SocketModeHandler(runtime.app, settings.slack_app_token.get_secret_value())
    runtime.slack_connection = lambda: OK if handler.client.is_connected() else "disconnected from Slack"
    health_server = _health_server(runtime, host, settings.health_port) if settings.health_port else None
    try:
        try:
            handler.connect()
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            raise StartupError(f"Slack refused SLACK_APP_TOKEN (apps.connections.open: {error}); use an app-level "
                               "token with connections:write from the app's Basic Information page") from None
        log.info("%s: Socket Mode%s", started,
                 f" (GET /healthz, GET /metrics on {host}:{settings.health_port})" if health_server else "")
        # until Ctrl-C or SIGTERM (bot.shutdown.Stopping raises KeyboardInterrupt here). Python runs signal handlers
        # in the main thread only: when the kernel hands SIGTERM to another thread, a main thread blocked for good
        # never notices (seen here: `accessbot serve` killed after 10 s instead of stopping), so it wakes each second
        never = threading.Event()
        while not never.wait(timeout=1.0):
            pass
    finally:
        handler.close()
        if health_server is not None:
            health_server.close()


def _health_server(runtime: Runtime, host: str, port: int) -> BaseWSGIServer:
    """``/healthz`` and ``/metrics`` on their own port, on a daemon thread (Socket Mode has no HTTP server)."""
    from waitress import create_server

    from bot.metrics import state_metrics
    from bot.slack.http import wsgi_app

    metrics = state_metrics(runtime.container.db, runtime.container.clock, runtime.schedulers())
    server = create_server(wsgi_app(None, health=runtime.health().report, metrics=metrics), host=host, port=port,
                           threads=2)
    threading.Thread(target=server.run, name="health", daemon=True).start()
    return server
