"""Identities from the configured directory plus what Slack says about a user.

:class:`DirectoryIndex` is built once per configuration and answers lookups by email or Slack id (either,
case-insensitive) in constant time. :func:`build_identity` is the one-off form of
:meth:`DirectoryIndex.build_identity`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from policy.config import Directory, DirectoryUser, OncallSchedule
from policy.identity import Identity
from policy.oncall import ProviderOncall, Shift, schedules_for, shift_at


def _key(email_or_id: str) -> str:
    return email_or_id.strip().casefold()


class DirectoryIndex:
    """Constant-time lookups in a :class:`Directory`.

    A user is found by email or by Slack id; when two entries claim the same email or id the first one
    wins (``check-config`` is where duplicates are reported). Each rotation's current shift is kept until it
    ends, so building an identity does not compute every schedule's hand-overs again.
    """

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self._shifts: dict[int, Shift] = {}  # id(schedule) -> its shift last asked for (schedules live with us)
        self._users: dict[str, DirectoryUser] = {}
        reports: dict[str, set[str]] = {}
        for user in directory.users:
            for key in (user.email, user.slack_id):
                if key:
                    self._users.setdefault(_key(key), user)
        for user in directory.users:
            if user.manager:
                # Index under every name of the manager, so `manager:` may be an email or a Slack id.
                manager = self._users.get(_key(user.manager))
                names = _names(manager) if manager else {_key(user.manager)}
                for name in names:
                    reports.setdefault(name, set()).add(user.email.lower())
        self._reports = {name: frozenset(emails) for name, emails in reports.items()}

    def user(self, email_or_id: str | None) -> DirectoryUser | None:
        """The directory entry with that email or Slack id, or None."""
        return self._users.get(_key(email_or_id)) if email_or_id else None

    def member_on_shift(self, schedule: OncallSchedule, now: datetime) -> str | None:
        """:func:`policy.oncall.on_shift`, remembered for as long as the shift lasts."""
        shift = self._shifts.get(id(schedule))
        if shift is None or not shift.covers(now):
            shift = shift_at(schedule, now)
            if shift is None:
                return None
            self._shifts[id(schedule)] = shift
        return shift.member

    def on_call_now(self, now: datetime) -> tuple[str | None, ...]:
        """Who is on shift on each rotation at ``now`` (in the order of ``directory.oncall``): identities built
        at two moments with the same answer (and the same incident-tool answers) have the same on-call."""
        return tuple(self.member_on_shift(s, now) for s in self.directory.oncall if s.rotation is not None)

    def direct_reports(self, email: str) -> frozenset[str]:
        """The (lower-cased) emails of the users whose manager is ``email`` (or that user's Slack id)."""
        return self._reports.get(_key(email), frozenset())

    def build_identity(
        self,
        *,
        slack_id: str | None,
        email: str | None,
        now: datetime,
        slack_groups: Iterable[str] = (),
        owner_of: Iterable[str] = (),
        deactivated: bool = False,
        is_bot: bool = False,
        timezone: str | None = None,
        display_name: str | None = None,
        provider_oncall: ProviderOncall | None = None,
    ) -> Identity:
        """The identity of a user at ``now``: Slack's view merged with the directory entry and on-call shifts.

        The entry is looked up by email first, then by Slack id. Slack user-group handles count as groups
        only when ``directory.slack_usergroups`` is on. ``owner_of`` are the integrations the user owns.
        ``provider_oncall`` says who is on call for the schedules read from an incident tool.
        """
        entry = self.user(email) or self.user(slack_id)
        groups: set[str] = set(entry.groups) if entry else set()
        if self.directory.slack_usergroups:
            groups.update(g for g in slack_groups if g)
        email = email or (entry.email if entry else None)
        slack_id = slack_id or (entry.slack_id if entry else None)
        names = {n for n in (email, slack_id) if n} | (_names(entry) if entry else set())
        return Identity(
            slack_id=slack_id,
            email=email,
            groups=frozenset(groups),
            manager=entry.manager if entry else None,
            oncall=schedules_for(self.directory.oncall, names, now, provider_oncall, self.member_on_shift),
            attributes=dict(entry.attributes) if entry else {},
            owner_of=frozenset(owner_of),
            deactivated=deactivated,
            is_bot=is_bot,
            timezone=timezone,
            display_name=display_name,
        )


def _names(user: DirectoryUser) -> set[str]:
    return {_key(n) for n in (user.email, user.slack_id) if n}


def build_identity(
    directory: Directory,
    *,
    slack_id: str | None,
    email: str | None,
    now: datetime,
    slack_groups: Iterable[str] = (),
    owner_of: Iterable[str] = (),
    deactivated: bool = False,
    is_bot: bool = False,
    timezone: str | None = None,
    display_name: str | None = None,
    provider_oncall: ProviderOncall | None = None,
) -> Identity:
    """One identity without keeping an index; build a :class:`DirectoryIndex` to look up many users."""
    return DirectoryIndex(directory).build_identity(
        slack_id=slack_id,
        email=email,
        now=now,
        slack_groups=slack_groups,
        owner_of=owner_of,
        deactivated=deactivated,
        is_bot=is_bot,
        timezone=timezone,
        display_name=display_name,
        provider_oncall=provider_oncall,
    )
