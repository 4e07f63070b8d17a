"""What ``accessbot serve`` checks before it starts, each failure one line on stderr and exit code 2.

In order: the settings parse; the tokens are of the right kind (``SLACK_BOT_TOKEN`` ``xoxb-…``,
``SLACK_APP_TOKEN`` ``xapp-…``) and a signing secret is set in HTTP mode; the database URL has a scheme the bot
speaks; the config file exists and validates; the database answers (within seconds) and takes the migrations;
Slack accepts the bot token (``auth.test``) and, in Socket Mode, the app token (``apps.connections.open``).
An operator then learns at start, in one line, what a first click would otherwise have shown as a traceback.
What the checks loaded (the config, who the bot is) is handed to the bot (:class:`Checked`), not loaded again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from slack_sdk.errors import SlackApiError
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from bot.health import first_line
from bot.settings import Settings
from policy.config import Config
from policy.validation import ConfigError, load_config_file

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.security.crypto import SecretBox

DRIVERS = {"sqlite": "sqlite", "sqlite+pysqlite": "sqlite", "postgresql+psycopg": "postgresql"}
CONNECT_SECONDS = 5
SHOWN_PROBLEMS = 3  # of a config that does not validate, on the one line


class StartupError(Exception):
    """The bot cannot start; the message is one line an operator can act on."""


@dataclass(frozen=True)
class Checked:
    """What the checks found, handed to the bot so that nothing is loaded twice (the config is read once)."""

    auth: dict[str, Any]  # auth.test's answer: the workspace and the bot it belongs to
    config: Config  # accessbot.yml, validated
    config_mtime: float  # the file's modification time before it was read (a later change is reloaded)
    secrets: SecretBox  # the encryption key, checked against the database


def load_settings() -> Settings:
    try:
        return Settings.load()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(part) for part in error["loc"])
        raise StartupError(f"{name}: {error['msg']} (got {str(error.get('input'))[:60]!r})") from None


def check_tokens(settings: Settings, *, socket_mode: bool) -> None:
    if settings.slack_bot_token is None:
        raise StartupError("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…); "
                           "see README, “Install in your workspace”")
    bot_token = settings.slack_bot_token.get_secret_value()
    if not bot_token.startswith("xoxb-"):
        raise StartupError(f"SLACK_BOT_TOKEN must be the app's bot token (xoxb-…), not one starting {bot_token[:5]!r}")
    if socket_mode:
        assert settings.slack_app_token is not None
        app_token = settings.slack_app_token.get_secret_value()
        if not app_token.startswith("xapp-"):
            raise StartupError("SLACK_APP_TOKEN must be an app-level token (xapp-…, with connections:write), not one "
                               f"starting {app_token[:5]!r}; unset it to run in HTTP mode")
    elif settings.slack_signing_secret is None:
        raise StartupError("SLACK_SIGNING_SECRET is required in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)")


def shown_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(url[:80])


def check_database_url(url: str) -> None:
    try:
        driver = make_url(url).drivername
    except ArgumentError:
        driver = None
    if driver not in DRIVERS:
        raise StartupError(f"ACCESSBOT_DATABASE_URL must start with sqlite:/// or postgresql+psycopg:// "
                           f"(got {shown_url(url)})")


def check_config(path: str) -> tuple[Config, float]:
    """The config at ``path``, validated, and the file's modification time before it was read."""
    from pathlib import Path

    if not Path(path).is_file():
        raise StartupError(f"the config file {path} does not exist (set ACCESSBOT_CONFIG to its path)")
    try:
        mtime = os.path.getmtime(path)
        return load_config_file(path), mtime
    except ConfigError as exc:
        problems = [str(p).removeprefix("error: ") for p in exc.problems] or [first_line(exc)]
        shown = "; ".join(problems[:SHOWN_PROBLEMS])
        also = f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else ""
        raise StartupError(f"the config {path} does not validate: {shown}{also}; "
                           f"`accessbot check-config {path}` explains each problem") from None


def check_database(url: str) -> None:
    """The database answers within seconds (a separate engine: the bot's own has no connect timeout)."""
    args = {"connect_timeout": CONNECT_SECONDS} if DRIVERS.get(make_url(url).drivername) == "postgresql" else {}
    engine = create_engine(url, poolclass=NullPool, connect_args=args)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = first_line(getattr(exc, "orig", None) or exc)
        raise StartupError(f"cannot reach the database at {shown_url(url)}: {reason}") from None
    finally:
        engine.dispose()


def check_bot_token(client: WebClient) -> dict[str, Any]:
    """``auth.test`` with the bot token; returns its answer (the workspace and the bot it belongs to)."""
    try:
        reply = client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        raise StartupError(f"Slack refused SLACK_BOT_TOKEN (auth.test: {error or exc.response.status_code}); "
                           "copy the Bot User OAuth Token from the app's OAuth & Permissions page") from None
    except Exception as exc:  # noqa: BLE001 — the network: any failure to get an answer
        raise StartupError(f"cannot reach Slack at {client.base_url}: {first_line(exc)}") from None
    return dict(reply.data) if isinstance(reply.data, dict) else {}


def check_app_token(client: WebClient, app_token: str) -> None:
    """``apps.connections.open`` with the app-level token (Socket Mode asks for a connection the same way)."""
    try:
        client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        raise StartupError(f"Slack refused SLACK_APP_TOKEN (apps.connections.open: {error}); use an app-level "
                           "token with connections:write from the app's Basic Information page") from None
    except Exception as exc:  # noqa: BLE001
        raise StartupError(f"cannot reach Slack at {client.base_url}: {first_line(exc)}") from None


def migrate(url: str) -> None:
    from store.db import Database

    try:
        Database(url).upgrade()
    except SQLAlchemyError as exc:
        raise StartupError(f"the database at {shown_url(url)} did not take the migrations: "
                           f"{first_line(getattr(exc, 'orig', None) or exc)}") from None


def check_before_start(settings: Settings, *, socket_mode: bool, client: WebClient) -> Checked:
    """Everything above, in order; returns what the bot starts with. Raises :class:`StartupError`."""
    check_tokens(settings, socket_mode=socket_mode)
    check_database_url(settings.database_url)
    config, config_mtime = check_config(settings.config_path)
    check_database(settings.database_url)
    migrate(settings.database_url)
    try:
        secrets = settings.secret_box()
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    identity = check_bot_token(client)
    if socket_mode and settings.slack_app_token is not None:
        check_app_token(client, settings.slack_app_token.get_secret_value())
    return Checked(identity, config, config_mtime, secrets)
