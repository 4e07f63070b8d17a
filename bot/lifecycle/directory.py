"""Identity providers: who a user is right now (directory, on-call, Slack profile), and who could approve."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Protocol

from bot.lifecycle.policy_holder import PolicyHolder
from policy.identity import Identity


class IdentityProvider(Protocol):
    def identity(self, user: str, now: datetime) -> Identity:
        """The identity of ``user`` (a Slack id or an email) as it is at ``now``."""
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
    """Identities from ``accessbot.yml``'s directory alone (the CLI, and tests without Slack)."""

    def __init__(self, holder: PolicyHolder) -> None:
        self.holder = holder

    def identity(self, user: str, now: datetime) -> Identity:
        policy = self.holder.current
        known = policy.directory.user(user)
        email = known.email if known else (user if "@" in user else None)
        slack_id = (known.slack_id if known else None) or (None if "@" in user else user)
        identity = policy.directory.build_identity(slack_id=slack_id or email, email=email, now=now)
        return dataclasses.replace(identity, owner_of=policy.owned_integrations(identity))

    def candidates(self, now: datetime) -> list[Identity]:
        return [
            self.identity(u.slack_id or u.email, now) for u in self.holder.current.config.directory.users
        ]

    def forget_user(self, slack_id: str) -> None:
        """Nothing is cached: the config is read as it is."""

    def forget_usergroups(self) -> None:
        """Nothing is cached: the config is read as it is."""
