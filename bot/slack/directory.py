"""Identities from Slack (users.info, user groups) merged with the config directory; a short TTL cache."""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.lifecycle.oncall import OncallReadings, OncallUnknown, on_call_emails, provider_oncall
from bot.lifecycle.policy_holder import PolicyHolder
from policy.identity import Identity
from policy.oncall import Purpose

log = logging.getLogger(__name__)

TTL_SECONDS = 60.0


class _Cache:
    def __init__(self, ttl: float, monotonic: Callable[[], float]) -> None:
        self.ttl = ttl
        self.monotonic = monotonic
        self._items: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], Any]) -> Any:
        now = self.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and now - hit[0] < self.ttl:
                return hit[1]
        value = load()
        with self._lock:
            self._items[key] = (now, value)
        return value

    def forget(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._items.pop(key, None)

    def forget_where(self, stale: Callable[[str, Any], bool]) -> None:
        with self._lock:
            for key in [k for k, (_, value) in self._items.items() if stale(k, value)]:
                del self._items[key]


class SlackDirectory:
    """An :class:`~bot.lifecycle.directory.IdentityProvider` backed by the Slack Web API and ``accessbot.yml``."""

    def __init__(
        self,
        client: WebClient,
        holder: PolicyHolder,
        *,
        ttl: float = TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        oncall: OncallReadings | None = None,
    ) -> None:
        self.client = client
        self.holder = holder
        self._cache = _Cache(ttl, monotonic)
        self.oncall = oncall  # schedules read from an incident tool
        self.purpose: Purpose = "approve"

    def for_held_access(self) -> SlackDirectory:
        """The same directory (and cache) for the automatic flows: on-call answers kept through an outage."""
        view = copy.copy(self)
        view.purpose = "hold"
        return view

    # --- Slack reads (cached) ------------------------------------------------------------

    def _profile(self, slack_id: str) -> dict[str, Any] | None:
        def load() -> dict[str, Any] | None:
            try:
                return dict(self.client.users_info(user=slack_id)["user"])
            except SlackApiError as error:
                if error.response.get("error") == "user_not_found":
                    return None
                raise

        return self._cache.get(f"user:{slack_id}", load)  # type: ignore[no-any-return]

    def _slack_id_for(self, email: str) -> str | None:
        """The Slack id of the account with this email (``users.lookupByEmail``); None when there is none."""

        def load() -> str | None:
            try:
                return str(self.client.users_lookupByEmail(email=email)["user"]["id"])
            except SlackApiError as error:
                if error.response.get("error") == "users_not_found":
                    return None
                raise

        return self._cache.get(f"email:{email.lower()}", load)  # type: ignore[no-any-return]

    def _usergroups(self) -> dict[str, frozenset[str]]:
        """Slack user-group handle -> member ids (only when ``directory.slack_usergroups`` is on)."""
        if not self.holder.current.config.directory.slack_usergroups:
            return {}

        def load() -> dict[str, frozenset[str]]:
            groups = self.client.usergroups_list(include_users=True)["usergroups"]
            return {g["handle"]: frozenset(g.get("users") or ()) for g in groups if not g.get("date_delete")}

        return self._cache.get("usergroups", load)  # type: ignore[no-any-return]

    # --- invalidation (Slack events) --------------------------------------------------------------------

    def forget_user(self, slack_id: str) -> None:
        """A ``user_change`` event: the next lookup reads the profile again (deactivation, email, time zone)."""
        self._cache.forget(f"user:{slack_id}")
        self._cache.forget_where(lambda key, value: key.startswith("email:") and value == slack_id)

    def forget_usergroups(self) -> None:
        """A ``subteam_*`` event: the next lookup reads the user groups again."""
        self._cache.forget("usergroups")

    # --- IdentityProvider --------------------------------------------------------------------------------

    def identity(self, user: str, now: datetime) -> Identity:
        policy = self.holder.current
        known = policy.directory.user(user)
        slack_id = (known.slack_id if known else None) or (None if "@" in user else user)
        if slack_id is None:  # an email from accessbot.yml: the Slack account with that email, if any
            slack_id = self._slack_id_for(known.email if known and known.email else user)
        profile = self._profile(slack_id) if slack_id else None
        email = (profile or {}).get("profile", {}).get("email") or (known.email if known else None)
        if email is None and "@" in user:
            email = user
        handles = [h for h, members in self._usergroups().items() if slack_id in members] if slack_id else []
        identity = policy.directory.build_identity(
            slack_id=slack_id or email,
            email=email,
            now=now,
            slack_groups=handles,
            # no Slack account (an email nobody in the workspace has) or a deactivated one: never asked
            deactivated=bool((profile or {}).get("deleted")) or profile is None,
            is_bot=bool((profile or {}).get("is_bot")),
            timezone=(profile or {}).get("tz"),
            display_name=(profile or {}).get("real_name") or None,
            provider_oncall=provider_oncall(self.oncall, now, self.purpose),
        )
        return dataclasses.replace(identity, owner_of=policy.owned_integrations(identity))

    def candidates(self, now: datetime) -> list[Identity]:
        config = self.holder.current.config
        keys: dict[str, None] = {}
        for user in config.directory.users:
            keys[user.slack_id or user.email] = None
        named_users, named_groups = _named(config.model_dump(mode="json"))
        keys.update(dict.fromkeys(named_users))
        for handle, members in self._usergroups().items():
            if handle in named_groups:
                keys.update(dict.fromkeys(sorted(members)))
        try:
            on_call = on_call_emails(provider_oncall(self.oncall, now, self.purpose))
        except OncallUnknown:
            return []  # held access: nobody is looked up as a candidate until the tool has answered once
        listed = {user.email.lower() for user in config.directory.users}
        keys.update(dict.fromkeys(email for email in on_call if email not in listed))
        out = []
        for key in keys:
            try:
                out.append(self.identity(key, now))
            except SlackApiError:
                log.warning("could not look up %s in Slack", key, exc_info=True)
        return out


def _named(tree: Any) -> tuple[set[str], set[str]]:
    """The values of every ``user`` and ``group`` condition anywhere in the config."""
    users: set[str] = set()
    groups: set[str] = set()
    for node in _walk(tree):
        attribute = node.get("attribute")
        if attribute in ("user", "group") and isinstance(node.get("values"), list):
            (users if attribute == "user" else groups).update(str(v) for v in node["values"])
    return users, groups


def _walk(tree: Any) -> Iterator[dict[str, Any]]:
    if isinstance(tree, dict):
        yield tree
        for value in tree.values():
            yield from _walk(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _walk(value)
