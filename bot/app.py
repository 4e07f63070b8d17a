"""The Bolt app factory: no global App, no work at import time (STYLE §4)."""

from __future__ import annotations

from slack_bolt import App
from slack_sdk import WebClient

from bot.container import Container
from bot.settings import Settings
from handlers import approvals, commands, directory_events, grantee_mfa, home, request_modal


def slack_client(settings: Settings) -> WebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return WebClient(token=token, base_url=settings.slack_api_url)


def create_app(settings: Settings, container: Container, client: WebClient | None = None) -> App:
    client = client or slack_client(settings)
    signing_secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    app = App(
        signing_secret=signing_secret,
        client=client,
        process_before_response=True,
        token_verification_enabled=False,
        request_verification_enabled=signing_secret is not None,
    )
    for surface in (commands, request_modal, approvals, grantee_mfa, home, directory_events):
        surface.register(app, container)
    return app
