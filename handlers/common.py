"""What every Slack surface shares: the wired dependencies, who is clicking, replies to the clicker."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.clock import Clock
from bot.lifecycle.automatic import Reconciler
from bot.lifecycle.directory import IdentityProvider
from bot.lifecycle.extending import Extending
from bot.lifecycle.policy_holder import PolicyHolder
from bot.lifecycle.requests import AccessService
from bot.lifecycle.revoking import Revoking
from bot.security.mfa import MfaService
from policy.identity import Identity

log = logging.getLogger(__name__)


class Deps(Protocol):
    """What the Slack surfaces are given: the lifecycle's services and the live config — no database."""

    @property
    def service(self) -> AccessService: ...
    @property
    def extending(self) -> Extending: ...
    @property
    def revoking(self) -> Revoking: ...
    @property
    def directory(self) -> IdentityProvider: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def policy(self) -> PolicyHolder: ...
    @property
    def mfa(self) -> MfaService: ...
    @property
    def reconciler(self) -> Reconciler: ...


def identity(deps: Deps, user_id: str) -> Identity:
    """Who the user is, from the directory's copy (no Web API call: safe before an ack)."""
    return deps.directory.identity(user_id, deps.clock.now())


def fresh_identity(deps: Deps, user_id: str) -> Identity:
    """Who the user is, read from Slack now (one ``users.info``): only after the ack, for the person deciding."""
    return deps.directory.fresh_identity(user_id, deps.clock.now())


def user_id_of(body: dict[str, Any]) -> str:
    user = body.get("user") or {}
    return str(user.get("id") or body.get("user_id") or "")


def tell(client: WebClient, body: dict[str, Any], text: str) -> None:
    """An ephemeral reply to the person who clicked, where they clicked (a DM when there is no channel)."""
    user = user_id_of(body)
    channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")
    try:
        if channel:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        else:
            client.chat_postMessage(channel=user, text=text)
    except SlackApiError:
        log.warning("could not tell %s: %s", user, text, exc_info=True)
