"""The Slack composition root: the Bolt app factory with its surfaces, and the outbox with its renderers.

The only module below the entry points that imports ``handlers`` (no global App, no work at import time: STYLE §4).

Every listener acknowledges first (SPEC §8): Bolt runs listeners on ``listener_executor`` and answers Slack as
soon as ``ack()`` is called (``process_before_response=False``), over HTTP and Socket Mode alike; the Web API
calls a listener makes after its ack never hold up the answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from bot.container import Container
from bot.lifecycle.policy_holder import settle_built
from bot.settings import Settings
from bot.slack.deliveries import BotIdentity, once_per_delivery, web_client
from bot.slack.homes import HomeViewers
from bot.slack.listeners import ListenerPool, favour_answers
from bot.slack.metered import MeteredWebClient
from bot.slack.observed import ObservedApp, bind_delivery
from bot.slack.outbox import OutboxSender
from handlers import approvals, commands, directory_events, grantee_mfa, home, request_modal
from handlers.common import tell, user_id_of
from handlers.views.notifications import render
from policy import picker

log = logging.getLogger(__name__)


def slack_client(settings: Settings) -> WebClient:
    """The Web API client: rate limits retried after ``Retry-After``, connection errors retried; its calls are
    counted by method and outcome for ``/metrics``."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return web_client(token, settings.slack_api_url)


def create_app(
    settings: Settings, container: Container, client: WebClient | None = None, *,
    listener_executor: Executor | None = None, auth: dict[str, Any] | None = None,
    viewers: HomeViewers | None = None,
) -> ObservedApp:
    """The Bolt app with every surface registered; ``auth`` is ``auth.test``'s answer when already known;
    ``viewers`` learns who opens their App Home (give the same one to :func:`outbox_sender`)."""
    client = client or slack_client(settings)
    signing_secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    bot = BotIdentity(client, client.token, known=auth)
    bot.start()
    favour_answers()
    app = ObservedApp(  # a log context per delivery (bot.slack.observed)
        signing_secret=signing_secret,
        # the listeners' clients: the same base URL and retry handlers, the token from `authorize`
        client=MeteredWebClient(base_url=client.base_url, timeout=client.timeout,
                                retry_handlers=client.retry_handlers),
        authorize=bot.authorize_function(),
        process_before_response=False,
        listener_executor=listener_executor or ListenerPool(),
        request_verification_enabled=signing_secret is not None,
    )
    app.use(bind_delivery)
    if viewers is not None:
        app.use(viewers.middleware)
    app.use(once_per_delivery(container.service.first_delivery))
    for surface in (commands, request_modal, approvals, grantee_mfa, home, directory_events):
        surface.register(app, container)

    @app.error
    def unexpected(error: Exception, body: dict[str, Any], client: WebClient) -> None:
        """A listener failed (a bug, Slack or the database down): log it, and tell the person where they are."""
        log.error("a Slack listener failed", exc_info=error)
        text = (":warning: Something went wrong on accessbot's side while handling that. Check `/access list` "
                "before trying again; the admins have the details in the bot's log.")
        modal_urls: list[dict[str, Any]] = body.get("response_urls") or []
        response_url = body.get("response_url") or (modal_urls[0].get("response_url") if modal_urls else None)
        try:
            if response_url:  # a slash command or a message button: answer where the user is, only to them
                WebhookClient(response_url).send(text=text, response_type="ephemeral")
            elif user_id_of(body):
                tell(client, body, text)
        except Exception:  # noqa: BLE001 — Slack itself may be what failed
            log.warning("could not tell the user about the failure", exc_info=True)

    return app


def outbox_sender(container: Container, client: WebClient, *, viewers: HomeViewers | None = None,
                  **tuning: Any) -> OutboxSender:
    """The outbox, rendering notices with the surfaces' views and republishing App Homes after changes — with
    ``viewers``, only of the people who have their Home open (:mod:`bot.slack.homes`); without, everyone's.

    ``tuning``: :class:`OutboxSender`'s keyword arguments (threads, batch, channel_interval, ...)."""

    def republish(user: str) -> None:
        if viewers is None or viewers.watching(user):
            home.publish(container, client, user)

    return OutboxSender(container.db, client, render, clock=container.clock, secrets=container.secrets,
                        publish_home=republish, **tuning)


def warm_up(container: Container, step_aside: Callable[[], None] | None = None) -> None:
    """What the first requests after a start (or a reload) would otherwise build while someone waits: the picker's
    option ids (the first options load needs them) and the approver candidates (every directory user's identity).
    Run on a background thread by the serving bot; a failure is only logged (the first request then builds it).

    ``step_aside`` is called between pieces of each (``ObservedApp.answering.step_aside``: wait while requests
    are being answered): a start or a reload in a busy hour does not slow the acks down."""
    started = time.perf_counter()
    try:
        picker.prepare(container.policy.current, pause=step_aside)
        people = len(container.directory.candidates(container.clock.now(), pause=step_aside))
    except Exception:  # noqa: BLE001 — an optimisation: the requests that need these build them anyway
        log.warning("could not prepare the approver candidates and the picker", exc_info=True)
        return
    settle_built()
    log.info("prepared the approver candidates (%d people) and the picker in %.1f s", people,
             time.perf_counter() - started)
