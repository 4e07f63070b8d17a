"""Directory events keep the bot's copy of Slack current: a profile changed (deactivated, new email, time zone), a
person joined, a user group was created or changed (handle, members).

Each event carries what changed, so the copy is updated without a Web API call (an older ``user_change``
delivered late never replaces a newer profile); a directory without a copy (the config alone) just forgets.
The next automatic-flow pass is brought forward, so joining or leaving a group grants or revokes within a tick.
Every subscribed event gets a listener: Slack counts unanswered events as failures and disables subscriptions
that keep failing. Events are acknowledged before any of this runs.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

from slack_bolt import App

from handlers.common import Deps

log = logging.getLogger(__name__)


@runtime_checkable
class LiveDirectory(Protocol):
    """A directory that keeps a copy of Slack (``bot.slack.directory.SlackDirectory``)."""

    def user_changed(self, user: dict[str, Any]) -> None: ...
    def usergroup_changed(self, group: dict[str, Any]) -> None: ...
    def usergroup_members_changed(self, group_id: str, added: list[str], removed: list[str]) -> None: ...


def register(app: App, deps: Deps) -> None:
    live = deps.directory if isinstance(deps.directory, LiveDirectory) else None

    def profile(event: dict[str, Any]) -> None:
        user = event.get("user")
        if not isinstance(user, dict) or not user.get("id"):
            return
        if live is not None:
            live.user_changed(user)
        else:
            deps.directory.forget_user(str(user["id"]))
        deps.reconciler.hasten()

    def group(event: dict[str, Any]) -> None:
        subteam = event.get("subteam")
        if live is not None and isinstance(subteam, dict) and subteam.get("id"):
            live.usergroup_changed(subteam)
        else:
            deps.directory.forget_usergroups()
        deps.reconciler.hasten()

    @app.event("user_change")
    def user_changed(event: dict[str, Any]) -> None:
        profile(event)

    @app.event("team_join")
    def team_joined(event: dict[str, Any]) -> None:
        profile(event)

    @app.event("subteam_created")
    def usergroup_created(event: dict[str, Any]) -> None:
        group(event)

    @app.event("subteam_updated")
    def usergroup_updated(event: dict[str, Any]) -> None:
        group(event)

    @app.event("subteam_members_changed")
    def usergroup_members_changed(event: dict[str, Any]) -> None:
        group_id = str(event.get("subteam_id") or "")
        deltas = "added_users" in event or "removed_users" in event
        if live is not None and group_id and deltas:
            live.usergroup_members_changed(group_id, _ids(event.get("added_users")), _ids(event.get("removed_users")))
        else:  # no deltas to apply: the groups are read again
            deps.directory.forget_usergroups()
        deps.reconciler.hasten()


def _ids(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []
