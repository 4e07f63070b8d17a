"""Identity providers: who a user is right now (directory, on-call, Slack profile), and who could approve."""

from __future__ import annotations

import dataclasses
import threading
import weakref
from collections.abc import Callable, Hashable, Iterator
from datetime import datetime
from typing import Any, Protocol

from bot.lifecycle.oncall import OncallReadings, OncallUnknown, on_call_emails, provider_oncall
from bot.lifecycle.policy_holder import PolicyHolder
from policy.builds import in_pieces
from policy.identity import Identity
from policy.oncall import Purpose


class Candidates:
    """Everyone who might be an approver, as identities built at one moment (a read-only sequence).

    A directory keeps one while nothing it was built from changed (the config, its copy of Slack, who is on
    shift), so the 10,000 identities of a large org are built once, not per request; ``memo`` holds what callers
    derived from exactly these identities (:func:`bot.lifecycle.approvers.eligible_approvers`).
    """

    __slots__ = ("identities", "lock", "memo", "source")

    def __init__(self, identities: list[Identity], source: object = None) -> None:
        self.identities = tuple(identities)
        self.source = source  # what they were built from (compared with ==): equal sources, equal identities
        self.memo: dict[Hashable, Any] = {}
        self.lock = threading.Lock()  # held while an entry of ``memo`` is computed (once, not by every thread)

    def __iter__(self) -> Iterator[Identity]:
        return iter(self.identities)

    def __len__(self) -> int:
        return len(self.identities)


NOBODY = Candidates([])

PAUSE_EVERY = 100  # identities built between two calls of a build's ``pause``


class IdentityProvider(Protocol):
    def identity(self, user: str, now: datetime) -> Identity:
        """The identity of ``user`` (a Slack id or an email) as it is at ``now``."""
        ...

    def fresh_identity(self, user: str, now: datetime) -> Identity:
        """As :meth:`identity`, read from the source now (the person deciding is checked fresh: SPEC §8)."""
        ...

    def candidates(self, now: datetime, *, pause: Callable[[], None] | None = None) -> Candidates:
        """Everyone who might be an approver (the service filters by eligibility); ``pause`` is called between
        pieces of a build (a background warm-up stepping aside for requests in progress)."""
        ...

    def forget_user(self, slack_id: str) -> None:
        """A profile changed (Slack's ``user_change``): drop what is cached of that user."""
        ...

    def forget_usergroups(self) -> None:
        """A user group changed (``subteam_*``): drop the cached memberships."""
        ...


class ConfigDirectory:
    """Identities from ``accessbot.yml``'s directory alone (the CLI, and tests without Slack).

    With ``oncall``, the schedules read from an incident tool count too, trusted as ``purpose`` allows
    (:func:`policy.oncall.provider_on_call`); :meth:`for_held_access` is the view the automatic flows use.
    """

    def __init__(self, holder: PolicyHolder, oncall: OncallReadings | None = None,
                 purpose: Purpose = "approve") -> None:
        self.holder = holder
        self.oncall = oncall
        self.purpose = purpose
        self._candidates = NOBODY

    def for_held_access(self) -> ConfigDirectory:
        return ConfigDirectory(self.holder, self.oncall, "hold")

    def identity(self, user: str, now: datetime) -> Identity:
        policy = self.holder.current
        known = policy.directory.user(user)
        email = known.email if known else (user if "@" in user else None)
        slack_id = (known.slack_id if known else None) or (None if "@" in user else user)
        identity = policy.directory.build_identity(slack_id=slack_id or email, email=email, now=now,
                                                   provider_oncall=provider_oncall(self.oncall, now, self.purpose))
        return dataclasses.replace(identity, owner_of=policy.owned_integrations(identity))

    def fresh_identity(self, user: str, now: datetime) -> Identity:
        return self.identity(user, now)  # the config is read as it is

    def candidates(self, now: datetime, *, pause: Callable[[], None] | None = None) -> Candidates:
        policy = self.holder.current
        try:
            provider = provider_oncall(self.oncall, now, self.purpose)
            on_call = on_call_emails(provider)
        except OncallUnknown:
            return NOBODY  # held access: nobody is looked up as a candidate until the tool has answered once
        source = (weakref.ref(policy), policy.directory.on_call_now(now), _frozen(provider))
        if self._candidates.source == source:
            return self._candidates
        users = [u.slack_id or u.email for u in policy.config.directory.users]
        known = {u.email.lower() for u in policy.config.directory.users}
        keys = [*users, *(e for e in on_call if e not in known)]
        self._candidates = Candidates([self.identity(key, now) for key in in_pieces(keys, PAUSE_EVERY, pause)],
                                      source)
        return self._candidates

    def forget_user(self, slack_id: str) -> None:
        """Nothing is cached: the config is read as it is."""

    def forget_usergroups(self) -> None:
        """Nothing is cached: the config is read as it is."""


def _frozen(provider: Any) -> Hashable:
    """An incident tool's answers (schedule -> emails on call) as a value to compare."""
    return None if provider is None else frozenset(provider.items())
