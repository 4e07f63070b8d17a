"""Directory events: a profile changed (deactivated, new email), a user group changed (members, handle).

The Slack directory caches lookups for a minute; these events drop the stale entries at once, so a deactivated
user is never asked again and a new member of an approver group can approve right away; and they bring the next
automatic-flow pass forward, so joining or leaving a group grants or revokes within a tick. Every subscribed event
gets a listener: Slack counts unanswered events as failures and disables subscriptions that keep failing.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App

from handlers.common import Deps

log = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    @app.event("user_change")
    def user_changed(event: dict[str, Any]) -> None:
        user_id = str((event.get("user") or {}).get("id") or "")
        if user_id:
            deps.directory.forget_user(user_id)
            deps.reconciler.hasten()

    @app.event("subteam_updated")
    def usergroup_updated(event: dict[str, Any]) -> None:
        deps.directory.forget_usergroups()
        deps.reconciler.hasten()

    @app.event("subteam_members_changed")
    def usergroup_members_changed(event: dict[str, Any]) -> None:
        deps.directory.forget_usergroups()
        deps.reconciler.hasten()
