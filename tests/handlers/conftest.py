"""A running bot: FakeSlack, the container (SlackDirectory, no-op connector), the WSGI app on a free port."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from slack_bolt import App
from slack_sdk.models.views import View

from bot.clock import FakeClock
from bot.container import Container, build
from bot.lifecycle.oncall import OncallReadings
from bot.lifecycle.policy_holder import PolicyHolder
from bot.security.crypto import SecretBox
from bot.settings import Settings
from bot.slack.app import create_app, outbox_sender
from bot.slack.deliveries import web_client
from bot.slack.directory import SlackDirectory
from bot.slack.http import wsgi_app
from bot.slack.outbox import OutboxSender
from integrations.noop import NoopConnector
from policy.validation import load_config_text
from store.db import Database
from tests.bot.fixtures import CONFIG, START
from tests.support.fake_slack import FakeSlack
from tests.support.listeners import TrackingExecutor
from tests.support.slack_sender import SlackSender

SIGNING_SECRET = "test-signing-secret"
USERS = {
    "UALICE": "alice@example.com",
    "UBOB": "bob@example.com",
    "UDANA": "dana@example.com",
    "UERIN": "erin@example.com",
    "UFRANK": "frank@example.com",
    "UCAROL": "carol@example.com",
    "UCTO": "cto@example.com",
    "USECOPS": "secops@example.com",
}


@dataclass
class Bot:
    fake: FakeSlack
    sender: SlackSender
    container: Container
    clock: FakeClock
    noop: NoopConnector
    outbox: OutboxSender
    url: str
    listeners: TrackingExecutor  # Bolt runs listeners here; `listeners.wait_idle()` waits for them to finish
    app: App  # the Bolt app (Socket Mode tests connect it to a FakeSocketMode)

    def valid_view(self, view: dict[str, Any]) -> dict[str, Any]:
        """Asserts the view is valid Block Kit (slack_sdk's models) and returns it."""
        fields = {
            k: v
            for k, v in view.items()
            if k
            in {
                "type",
                "id",
                "callback_id",
                "external_id",
                "team_id",
                "bot_id",
                "app_id",
                "root_view_id",
                "previous_view_id",
                "title",
                "submit",
                "close",
                "blocks",
                "private_metadata",
                "state",
                "hash",
                "clear_on_close",
                "notify_on_close",
            }
        }
        fields.pop("state", None)
        View(**fields).validate_json()
        return view


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128  # as waitress: socketserver's default 5 drops concurrent connections


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 — the stdlib's name
        pass


@pytest.fixture
def bot(db: Database) -> Iterator[Bot]:
    with running_bot(db) as running:
        yield running


@contextmanager
def running_bot(
    db: Database,
    config_text: str = CONFIG,
    fake: FakeSlack | None = None,
    oncall: Callable[[PolicyHolder, FakeClock], OncallReadings] | None = None,
) -> Iterator[Bot]:
    fake = fake or FakeSlack()
    fake.start()
    for user_id, email in USERS.items():
        if user_id not in fake.users:
            fake.add_user(user_id, email, real_name=email.split("@")[0].title())
    config = load_config_text(config_text)
    holder = PolicyHolder.from_config(config)
    client = web_client("xoxb-test", fake.url)  # the bot's own client: 429s and connection errors retried
    clock = FakeClock(START)
    directory = SlackDirectory(client, holder, oncall=oncall(holder, clock) if oncall else None)
    noop = NoopConnector("db", config.integrations[0].catalog_resources())
    container = build(
        db=db,
        policy=holder,
        secrets=SecretBox([Fernet.generate_key().decode()]),
        clock=clock,
        directory=directory,
        connectors={"db": noop},
    )
    settings = Settings(
        SLACK_BOT_TOKEN=SecretStr("xoxb-test"),
        SLACK_SIGNING_SECRET=SecretStr(SIGNING_SECRET),
        SLACK_API_URL=fake.url,
    )
    directory.load()
    listeners = TrackingExecutor()
    app = create_app(settings, container, client, listener_executor=listeners)
    server = make_server("127.0.0.1", 0, wsgi_app(app, signing_secret=SIGNING_SECRET), server_class=_Server,
                         handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    # Slack's pacing (one message per second per channel) is tested on its own (test_outbox_pacing.py)
    outbox = outbox_sender(container, client, channel_interval=0)
    try:
        yield Bot(
            fake,
            SlackSender(url, SIGNING_SECRET, response_url_base=fake.hooks_url, after=listeners.wait_idle),
            container,
            clock,
            noop,
            outbox,
            url,
            listeners,
            app,
        )
    finally:
        listeners.wait_idle()
        listeners.shutdown(wait=True)
        outbox.close()
        server.shutdown()
        server.server_close()
        thread.join(5)
        fake.stop()
