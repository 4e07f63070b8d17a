"""Identity providers: who a user is right now (directory, on-call, Slack profile), and who could approve."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Protocol

from bot.lifecycle.oncall import OncallReadings, OncallUnknown, on_call_emails, provider_oncall
from bot.lifecycle.policy_holder import PolicyHolder
from policy.identity import Identity
from policy.oncall import Purpose


class IdentityProvider(Protocol):
    def identity(self, user: str, now: datetime) -> Identity:
        """The identity of ``user`` (a Slack id or an email) as it is at ``now``."""
        ...

    def fresh_identity(self, user: str, now: datetime) -> Identity:
        """As :meth:`identity`, read from the source now (the person deciding is checked fresh: SPEC §8)."""
        ...

    def candidates(self, now: datetime) -> list[Identity]:
        """Everyone who might be an approver (the service filters by eligibility)."""
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

    def candidates(self, now: datetime) -> list[Identity]:
        users = [u.slack_id or u.email for u in self.holder.current.config.directory.users]
        try:
            on_call = on_call_emails(provider_oncall(self.oncall, now, self.purpose))
        except OncallUnknown:
            return []  # held access: nobody is looked up as a candidate until the tool has answered once
        known = {u.email.lower() for u in self.holder.current.config.directory.users}
        return [self.identity(key, now) for key in [*users, *(e for e in on_call if e not in known)]]

    def forget_user(self, slack_id: str) -> None:
        """Nothing is cached: the config is read as it is."""

    def forget_usergroups(self) -> None:
        """Nothing is cached: the config is read as it is."""
