"""``accessbot demo``'s processes in one: the real bot on its own loopback port, and the demo's server.

The bot is assembled exactly as ``serve --http`` assembles it (:func:`bot.runtime.assemble`) and served by the
same WSGI endpoint (:func:`bot.http.wsgi_app`), with SQLite in a temporary directory and ``SLACK_API_URL``
pointed at the demo's server. The demo's server (127.0.0.1 only) answers the bot's Web API calls, its
``response_url`` posts and the webhook connector's calls, and serves the page and its JSON endpoints.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot.demo.actions import PageActions
from bot.demo.config import populate as populate_workspace
from bot.demo.config import prepare, shipped_config
from bot.demo.recording import RecordingConnector
from bot.demo.web import DemoWeb
from bot.demo.workspace import Workspace
from bot.runtime import Runtime, assemble
from bot.settings import Settings
from bot.slack.http import wsgi_app

log = logging.getLogger(__name__)
BOT_TOKEN = "xoxb-accessbot-demo"


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 — the stdlib's name
        pass


def _serve(app: Any, port: int) -> tuple[_Server, threading.Thread]:
    server = make_server("127.0.0.1", port, app, server_class=_Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                              name=f"demo-http-{server.server_port}")
    thread.start()
    return server, thread


@dataclass
class Demo:
    """Start with :meth:`start`, stop with :meth:`stop` (or use it as a context manager)."""

    config_path: str | Path | None = None
    port: int = 8000
    postgres_url: str | None = None
    tick_seconds: float = 0.5
    workspace: Workspace = field(default_factory=Workspace)
    runtime: Runtime | None = None
    url: str = ""
    bot_url: str = ""
    _servers: list[tuple[_Server, threading.Thread]] = field(default_factory=list)
    _tmp: str = ""
    _saved_env: dict[str, str | None] = field(default_factory=dict)

    def start(self) -> Demo:
        signing_secret = secrets.token_hex(16)
        web = DemoWeb(self.workspace, webhook_secret=secrets.token_hex(16))
        self._servers.append(_serve(web, self.port))  # first: the bot calls the Web API while it assembles
        self.url = f"http://127.0.0.1:{self._servers[0][0].server_port}/"
        self.workspace.base_url = self.url
        try:
            self._tmp = tempfile.mkdtemp(prefix="accessbot-demo-")
            prepared = prepare(self.config_path or shipped_config(), self.url, webhook_secret=web.webhook_secret,
                               postgres_url=self.postgres_url)
            config_file = Path(self._tmp, "accessbot.yml")
            config_file.write_text(prepared.text, encoding="utf-8")
            for name, value in prepared.env.items():  # connectors read their secrets from the environment
                self._saved_env[name] = os.environ.get(name)
                os.environ[name] = value
            populate_workspace(self.workspace, prepared.config)
            settings = Settings(
                SLACK_BOT_TOKEN=SecretStr(BOT_TOKEN), SLACK_SIGNING_SECRET=SecretStr(signing_secret),
                SLACK_APP_TOKEN=None, SLACK_API_URL=f"{self.url}api/", ACCESSBOT_CONFIG=str(config_file),
                ACCESSBOT_DATABASE_URL=f"sqlite:///{Path(self._tmp, 'accessbot.db')}",
                ACCESSBOT_ENCRYPTION_KEY=SecretStr(Fernet.generate_key().decode()),
                ACCESSBOT_TICK_SECONDS=self.tick_seconds,
            )
            runtime = assemble(settings)
            self.runtime = runtime
            connectors = runtime.container.connectors
            for name, connector in list(connectors.items()):
                connectors[name] = RecordingConnector(connector, self.workspace)
            self.workspace.now = runtime.container.clock.now
            bot = wsgi_app(runtime.app, health=runtime.health().report)
            self._servers.append(_serve(bot, 0))
            self.bot_url = f"http://127.0.0.1:{self._servers[1][0].server_port}/"
            web.attach(runtime, PageActions(self.workspace, f"{self.bot_url}slack/events", signing_secret))
            runtime.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.runtime is not None:
            self.runtime.shutdown()
        for server, thread in reversed(self._servers):
            server.shutdown()
            server.server_close()
            thread.join(5)
        self._servers.clear()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Demo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
