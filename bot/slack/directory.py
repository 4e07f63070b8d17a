"""Identities from Slack merged with the config directory, answered from memory (no Web API call per decision).

The workspace is loaded once (``users.list``, paginated, and ``usergroups.list`` with members) into a
:class:`~bot.slack.roster.Roster`, kept current by ``user_change``, ``team_join`` and ``subteam_*`` events
(:mod:`handlers.directory_events`) and reloaded in full every ``refresh_every`` seconds (events can be missed).
Identity, eligibility and approver lists are answered from that copy. The one Web API call left is
:meth:`SlackDirectory.fresh_identity`: the person clicking Approve or Deny is read again with ``users.info``
after Slack has its answer, so a deactivated approver cannot decide even when the event was missed.

An id the copy does not know (an account created since the last load whose ``team_join`` was missed) is read
with one ``users.info`` and remembered, an unknown answer for ``miss_ttl`` seconds.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.lifecycle.directory import NOBODY, PAUSE_EVERY, Candidates
from bot.lifecycle.oncall import OncallReadings, OncallUnknown, on_call_emails, provider_oncall
from bot.lifecycle.policy_holder import PolicyHolder
from bot.slack.deliveries import retry_after
from bot.slack.roster import Roster, SlackUser, UserGroup, group_of
from bot.slack.roster_snapshots import RosterSnapshots
from policy.builds import SharedBuild, in_pieces
from policy.errors import AccessError
from policy.identity import Identity
from policy.oncall import ProviderOncall, Purpose

log = logging.getLogger(__name__)

PAGE_SIZE = 200  # users.list: Slack asks for at most 200 per page
RATE_LIMITED_PAGE_ATTEMPTS = 10  # a full load waits out Slack's rate limit (users.list: ~20 calls a minute) ...
LONGEST_RATE_LIMIT_WAIT = 300.0  # ... unless a Retry-After is longer than this: then the load fails, retried later
REFRESH_SECONDS = 3600.0
MISS_TTL_SECONDS = 60.0


class DirectoryUnavailable(AccessError):
    """Slack could not be asked (``fresh_identity``): the decision is refused rather than made on old data."""

    def __init__(self, detail: str) -> None:
        super().__init__("Slack could not confirm your account just now, so nothing was decided; try again in a "
                         f"minute ({detail}).")


class SlackDirectory:
    """An :class:`~bot.lifecycle.directory.IdentityProvider` backed by Slack and ``accessbot.yml``."""

    def __init__(
        self,
        client: WebClient,
        holder: PolicyHolder,
        *,
        refresh_every: float = REFRESH_SECONDS,
        miss_ttl: float = MISS_TTL_SECONDS,
        page_size: int = PAGE_SIZE,
        monotonic: Callable[[], float] = time.monotonic,
        oncall: OncallReadings | None = None,
        snapshots: RosterSnapshots | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.client = client
        self.holder = holder
        self.refresh_every = refresh_every
        self.miss_ttl = miss_ttl
        self.page_size = page_size
        self.monotonic = monotonic
        self.oncall = oncall  # schedules read from an incident tool
        self.snapshots = snapshots  # the last full load, kept in the database: a start serves from it
        self._stopping = threading.Event()
        self.sleep = sleep or self._stopping.wait  # a wait for a rate limit; True: the bot is stopping
        self.purpose: Purpose = "approve"
        self.roster = Roster()
        self._loaded_at: float | None = None
        self._misses: dict[str, float] = {}  # unknown ids -> when Slack said so
        self._load_lock = threading.Lock()
        self._named_cache: tuple[Any, tuple[set[str], set[str]]] | None = None
        self._candidates = NOBODY
        self._candidates_build = SharedBuild()

    def for_held_access(self) -> SlackDirectory:
        """The same directory (and copy of Slack) for the automatic flows: on-call kept through an outage."""
        view = copy.copy(self)
        view.purpose = "hold"
        return view

    # --- loading ---------------------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._loaded_at is not None

    def load(self) -> int:
        """Read every user (one paginated pass) and, when they count, every user group; returns the users."""
        with self._load_lock:
            return self._load()

    def _load(self) -> int:  # under _load_lock
        users = list(self._all_users())
        groups = self._all_groups() if self._usergroups_enabled() else None
        self.roster.replace(users, groups)
        self._misses.clear()
        self._loaded_at = self.monotonic()
        log.info("directory loaded: %d Slack users, %s user groups", len(users),
                 "no" if groups is None else len(groups))
        if self.snapshots is not None:
            self.snapshots.save(users, groups)
        return len(users)

    def start(self) -> None:
        """At start: serve from the last full load's snapshot when there is a recent one, and read Slack again
        at the next :meth:`refresh_due` (the refresher's, in the background); without one, read Slack now."""
        snapshot = self.snapshots.load() if self.snapshots is not None else None
        if snapshot is None or (snapshot.groups is None and self._usergroups_enabled()):
            self.refresh_due()
            return
        with self._load_lock:
            if self._loaded_at is not None:  # loaded meanwhile
                return
            self.roster.replace(snapshot.users, snapshot.groups)
            self._loaded_at = self.monotonic() - self.refresh_every  # due: the next refresh reads Slack
        log.info("directory from the snapshot taken at %s: %d Slack users, %s user groups; reading Slack again "
                 "in the background", snapshot.taken_at.isoformat(timespec="seconds"), len(snapshot.users),
                 "no" if snapshot.groups is None else len(snapshot.groups))

    def refresh_due(self) -> None:
        """The periodic full reload (a scheduler calls this often; it reloads every ``refresh_every``)."""
        if self._loaded_at is not None and self.monotonic() - self._loaded_at < self.refresh_every:
            return
        try:
            self.load()
        except Exception:  # noqa: BLE001 — Slack down or unreachable: the copy in memory stays, retried next time
            log.warning("could not (re)load the Slack directory; the copy in memory stays", exc_info=True)

    def _ensure_loaded(self) -> None:
        if self._loaded_at is None:  # not loaded at start (Slack was down): the first reader loads it
            with self._load_lock:
                if self._loaded_at is None:  # the others, arriving meanwhile, take what it loaded
                    self._load()

    def _all_users(self) -> Iterator[SlackUser]:
        cursor = ""
        while True:
            page = self._patiently(partial(self.client.users_list, limit=self.page_size, cursor=cursor or None))
            for member in page.get("members") or []:
                yield SlackUser.of(member)
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return

    def _all_groups(self) -> list[UserGroup]:
        listed = self._patiently(
            partial(self.client.usergroups_list, include_users=True, include_disabled=False))["usergroups"]
        return [g for g in (group_of(raw) for raw in listed) if g is not None]

    def _patiently(self, call: Callable[[], Any]) -> Any:
        """One call of a full load; a rate limit (HTTP 429) is waited out for its ``Retry-After`` and the same call
        (the same page) made again: a 10,000-person workspace is 50 pages at ~20 a minute, and starting over from
        the first page at every refusal would never finish. The client's own retry waits only a few seconds."""
        attempt = 1
        while True:
            try:
                return call()
            except SlackApiError as error:
                wait = retry_after(error)
                if wait is None or wait > LONGEST_RATE_LIMIT_WAIT or attempt == RATE_LIMITED_PAGE_ATTEMPTS:
                    raise
                log.info("Slack rate-limits the directory load: going on in %.0f s from the same page", wait)
                if self.sleep(wait):
                    raise DirectoryUnavailable("the bot is stopping") from error
                attempt += 1

    def stop(self) -> None:
        """The bot is stopping: a load waiting out a rate limit gives up now (it would hold the process up)."""
        self._stopping.set()

    def _usergroups_enabled(self) -> bool:
        return bool(self.holder.current.config.directory.slack_usergroups)

    # --- events (handlers.directory_events) -----------------------------------------------------------------

    def user_changed(self, user: dict[str, Any]) -> None:
        """``user_change`` / ``team_join``: the event carries the whole profile; an older one is ignored."""
        self.roster.put_user(SlackUser.of(user))
        self._misses.pop(str(user.get("id")), None)

    def usergroup_changed(self, group: dict[str, Any]) -> None:
        """``subteam_created`` / ``subteam_updated``: the group as it is now (disabled: gone)."""
        if not self._usergroups_enabled():
            return
        members = group.get("users")
        if members is None:  # an update without the member list keeps the members known
            known = next((g for g in self.roster.groups() if g.id == group.get("id")), None)
            members = sorted(known.members) if known else []
        self.roster.put_group(group_of(group, members), str(group.get("id")))

    def usergroup_members_changed(self, group_id: str, added: list[str], removed: list[str]) -> None:
        if self._usergroups_enabled() and not self.roster.change_members(group_id, added, removed):
            self.forget_usergroups()

    def forget_user(self, slack_id: str) -> None:
        """Read this user again at the next lookup."""
        self._misses.pop(slack_id, None)
        try:
            self._read_user(slack_id)
        except SlackApiError:
            log.warning("could not read %s from Slack", slack_id, exc_info=True)

    def forget_usergroups(self) -> None:
        """Read the user groups again (an event about a group the copy does not know)."""
        if not self._usergroups_enabled():
            return
        try:
            groups = self._all_groups()
        except SlackApiError:
            log.warning("could not reload the Slack user groups", exc_info=True)
            return
        self.roster.replace_groups(groups)

    # --- IdentityProvider -----------------------------------------------------------------------------------

    def identity(self, user: str, now: datetime) -> Identity:
        """Who ``user`` (a Slack id or an email) is now, from the copy in memory (an unknown id is read once)."""
        return self._identity(user, now, read_misses=True)

    def _identity(self, user: str, now: datetime, *, read_misses: bool, provider: ProviderOncall | None = None,
                  provider_known: bool = False) -> Identity:
        self._ensure_loaded()
        slack_id = self._slack_id(user)
        profile = self._known(slack_id, read_misses=read_misses) if slack_id else None
        if not provider_known:
            provider = provider_oncall(self.oncall, now, self.purpose)
        return self._build(user, slack_id, profile, now, provider)

    def fresh_identity(self, user: str, now: datetime) -> Identity:
        """As :meth:`identity`, with the profile read from Slack now (one ``users.info``): the clicker's check."""
        self._ensure_loaded()
        slack_id = self._slack_id(user)
        profile = None
        if slack_id:
            try:
                profile = self._read_user(slack_id)
            except SlackApiError as error:
                raise DirectoryUnavailable(str(error.response.get("error") or error)) from error
        return self._build(user, slack_id, profile, now, provider_oncall(self.oncall, now, self.purpose))

    def candidates(self, now: datetime, *, pause: Callable[[], None] | None = None) -> Candidates:
        """Everyone who might be asked, from the copy only (no Web API call per candidate); built again only
        when the config, the copy of Slack or who is on shift changed since the last time.

        ``pause`` (the warm-up's: step aside for requests in progress) is called between pieces of the build,
        except while another thread waits for the build: then it goes on at full speed."""
        self._ensure_loaded()
        policy = self.holder.current
        try:
            provider = provider_oncall(self.oncall, now, self.purpose)
        except OncallUnknown:
            return NOBODY  # held access: nobody is looked up as a candidate until the tool has answered once
        source = (weakref.ref(policy), self.roster.generation, policy.directory.on_call_now(now),
                  None if provider is None else frozenset(provider.items()))
        cached = self._candidates
        if cached.source == source:
            return cached
        build = self._candidates_build
        with build.turn():  # one thread builds them; the others, arriving meanwhile, take that one
            if self._candidates.source == source:
                return self._candidates
            return self._build_candidates(policy, source, provider, now, build.unless_awaited(pause))

    def _build_candidates(self, policy: Any, source: object, provider: ProviderOncall | None,
                          now: datetime, pause: Callable[[], None] | None = None) -> Candidates:
        config = policy.config
        keys: dict[str, None] = {}
        for user in config.directory.users:
            keys[user.slack_id or user.email] = None
        named_users, named_groups = self._named(config)
        keys.update(dict.fromkeys(named_users))
        if self._usergroups_enabled():
            for group in self.roster.groups():
                if group.handle in named_groups:
                    keys.update(dict.fromkeys(sorted(group.members)))
        listed = {user.email.lower() for user in config.directory.users}
        keys.update(dict.fromkeys(email for email in on_call_emails(provider) if email not in listed))
        # an id Slack did not list is nobody to ask (read_misses=False: no users.info per candidate)
        built = Candidates([self._identity(key, now, read_misses=False, provider=provider, provider_known=True)
                            for key in in_pieces(keys, PAUSE_EVERY, pause)], source)
        self._candidates = built
        return built

    def _named(self, config: Any) -> tuple[set[str], set[str]]:
        cached = self._named_cache
        if cached is None or cached[0] is not config:
            # the conditions, not the integrations' resources (100,000 of them in a large org) nor the directory
            # (10,000 people, no conditions)
            tree = config.model_dump(mode="json", exclude={"directory": True,
                                                           "integrations": {"__all__": {"resources"}}})
            cached = self._named_cache = (config, _named(tree))
        return cached[1]

    # --- internals ------------------------------------------------------------------------------------------

    def _slack_id(self, user: str) -> str | None:
        known = self.holder.current.directory.user(user)
        slack_id = (known.slack_id if known else None) or (None if "@" in user else user)
        if slack_id is None:  # an email from accessbot.yml: the Slack account with that email, if any
            slack_id = self.roster.id_for_email(known.email if known and known.email else user)
        return slack_id

    def _known(self, slack_id: str, *, read_misses: bool) -> SlackUser | None:
        found = self.roster.user(slack_id)
        if found is not None or not read_misses:
            return found
        missed = self._misses.get(slack_id)
        if missed is not None and self.monotonic() - missed < self.miss_ttl:
            return None
        return self._read_user(slack_id)

    def _read_user(self, slack_id: str) -> SlackUser | None:
        """One ``users.info``; the answer replaces the copy (None: Slack has no such user)."""
        try:
            user = SlackUser.of(self.client.users_info(user=slack_id)["user"])
        except SlackApiError as error:
            if error.response.get("error") == "user_not_found":
                self._misses[slack_id] = self.monotonic()
                return None
            raise
        self.roster.put_user(user)
        self._misses.pop(slack_id, None)
        return self.roster.user(slack_id) or user

    def _build(self, user: str, slack_id: str | None, profile: SlackUser | None, now: datetime,
               provider: ProviderOncall | None) -> Identity:
        policy = self.holder.current
        known = policy.directory.user(user)
        email = (profile.email if profile else None) or (known.email if known else None)
        if email is None and "@" in user:
            email = user
        handles = self.roster.handles_of(slack_id) if slack_id and self._usergroups_enabled() else frozenset()
        identity = policy.directory.build_identity(
            slack_id=slack_id or email,
            email=email,
            now=now,
            slack_groups=handles,
            # no Slack account (an email nobody in the workspace has) or a deactivated one: never asked
            deactivated=profile is None or profile.deleted,
            is_bot=bool(profile and profile.is_bot),
            timezone=profile.tz if profile else None,
            display_name=profile.real_name if profile else None,
            provider_oncall=provider,
        )
        return dataclasses.replace(identity, owner_of=policy.owned_integrations(identity))


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
