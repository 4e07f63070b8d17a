"""The workspace's people and user groups as the bot keeps them in memory: loaded once, kept current by events.

A :class:`Roster` holds one small :class:`SlackUser` per account (not Slack's whole user object) and each user
group's handle and members, with the indexes a decision needs: by email, and the handles each user belongs to.
It never calls Slack; :mod:`bot.slack.directory` feeds it from ``users.list``/``usergroups.list`` and events.
Readers see either the old or the new state of an entry: updates replace whole entries under a lock.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SlackUser:
    id: str
    email: str | None
    deleted: bool
    is_bot: bool
    tz: str | None
    real_name: str | None
    updated: int  # Slack's `updated` (epoch seconds): an older copy of the profile never replaces a newer one

    @classmethod
    def of(cls, user: Mapping[str, Any]) -> SlackUser:
        """From a user object as ``users.list``, ``users.info``, ``user_change`` and ``team_join`` carry it."""
        profile = user.get("profile") or {}
        email = profile.get("email")
        return cls(
            id=str(user["id"]),
            email=str(email).lower() if email else None,
            deleted=bool(user.get("deleted")),
            is_bot=bool(user.get("is_bot")) or str(user.get("id")) == "USLACKBOT",
            tz=user.get("tz") or None,
            real_name=user.get("real_name") or profile.get("real_name") or None,
            updated=int(user.get("updated") or 0),
        )


@dataclass(frozen=True, slots=True)
class UserGroup:
    id: str
    handle: str
    members: frozenset[str]


class Roster:
    """Users and user groups by id; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, SlackUser] = {}
        self._by_email: dict[str, str] = {}
        self._groups: dict[str, UserGroup] = {}
        self._handles_of: dict[str, frozenset[str]] = {}
        self.generation = 0  # bumped by every change: identities built from an older generation are stale

    # --- reading -----------------------------------------------------------------------------------------

    def user(self, slack_id: str) -> SlackUser | None:
        return self._users.get(slack_id)

    def id_for_email(self, email: str) -> str | None:
        return self._by_email.get(email.strip().lower())

    def handles_of(self, slack_id: str) -> frozenset[str]:
        return self._handles_of.get(slack_id, frozenset())

    def groups(self) -> list[UserGroup]:
        return list(self._groups.values())

    def __len__(self) -> int:
        return len(self._users)

    # --- replacing everything (a full load) ---------------------------------------------------------------

    def replace(self, users: Iterable[SlackUser], groups: Iterable[UserGroup] | None) -> None:
        """A full load: every user (and, unless None, every group) replaced at once. When it reads what the copy
        already holds (a periodic reload, or Slack read again after a start from the snapshot), nothing changes:
        the identities built from the copy stay current (10,000 of them are not built again)."""
        by_id = {u.id: u for u in users}
        by_group = None if groups is None else {g.id: g for g in groups}
        with self._lock:
            if by_id == self._users and (by_group is None or by_group == self._groups):
                return
        by_email = _email_index(by_id.values())
        grouped = None if by_group is None else (by_group, _handle_index(by_group.values()))
        with self._lock:
            self._users, self._by_email = by_id, by_email
            self.generation += 1
            if grouped is not None:
                self._groups, self._handles_of = grouped
            self.generation += 1

    def replace_groups(self, groups: Iterable[UserGroup]) -> None:
        by_id = {g.id: g for g in groups}
        handles = _handle_index(by_id.values())
        with self._lock:
            self._groups, self._handles_of = by_id, handles
            self.generation += 1

    # --- events ---------------------------------------------------------------------------------------------

    def put_user(self, user: SlackUser) -> bool:
        """A profile from an event or a fresh ``users.info``; False when an older copy was ignored."""
        with self._lock:
            old = self._users.get(user.id)
            if old is not None and old.updated > user.updated:
                return False
            self._users[user.id] = user
            if old is not None and dataclasses.replace(old, updated=user.updated) == user:
                # read again (every Approve click reads the clicker) or a change of what identities do not use
                # (a status, a photo): identities built from the copy are still right
                return True
            self.generation += 1
            if old is not None and old.email and self._by_email.get(old.email) == user.id:
                del self._by_email[old.email]
            if user.email and (user.email not in self._by_email or not user.deleted):
                self._by_email[user.email] = user.id
            return True

    def put_group(self, group: UserGroup | None, group_id: str) -> None:
        """A group created, renamed, changed or (``None``) disabled."""
        with self._lock:
            if group is None:
                self._groups.pop(group_id, None)
            else:
                self._groups[group.id] = group
            self._handles_of = _handle_index(self._groups.values())
            self.generation += 1

    def change_members(self, group_id: str, added: Iterable[str], removed: Iterable[str]) -> bool:
        """``subteam_members_changed``: False when the group is unknown (the caller reloads the groups)."""
        with self._lock:
            group = self._groups.get(group_id)
            if group is None:
                return False
            members = (group.members | frozenset(added)) - frozenset(removed)
            self._groups[group_id] = UserGroup(group.id, group.handle, members)
            self._handles_of = _handle_index(self._groups.values())
            self.generation += 1
            return True


def group_of(group: Mapping[str, Any], members: Iterable[str] | None = None) -> UserGroup | None:
    """A user group from Slack's object; None when it is disabled (``date_delete`` set)."""
    if group.get("date_delete"):
        return None
    users = group.get("users") if members is None else members
    return UserGroup(str(group["id"]), str(group.get("handle") or ""), frozenset(str(u) for u in users or ()))


def _email_index(users: Iterable[SlackUser]) -> dict[str, str]:
    index: dict[str, str] = {}
    for user in users:  # an active account wins over a deactivated one with the same email
        if user.email and (user.email not in index or not user.deleted):
            index[user.email] = user.id
    return index


def _handle_index(groups: Iterable[UserGroup]) -> dict[str, frozenset[str]]:
    handles: dict[str, set[str]] = {}
    for group in groups:
        for member in group.members:
            handles.setdefault(member, set()).add(group.handle)
    return {member: frozenset(names) for member, names in handles.items()}
