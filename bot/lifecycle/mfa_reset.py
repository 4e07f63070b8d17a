"""An admin's MFA reset (``accessbot mfa reset USER``): the user lost their authenticator.

The enrolment is removed and the reset audited in the same transaction (and posted to the audit channel when
one is configured); the user's next ``/access mfa`` enrols a new authenticator, and flows that require MFA ask
for it again until they do.
"""

from __future__ import annotations

import re

from bot.clock import Clock
from bot.lifecycle.directory import IdentityProvider
from bot.lifecycle.events import Events
from policy.errors import AccessError, NotFound
from store.db import Database
from store.mfa import delete_enrolment

SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


class UnknownUser(AccessError):
    pass


def slack_user_of(user: str, directory: IdentityProvider, clock: Clock) -> str:
    """The Slack user id ``user`` names: a Slack id as it is, or an email the directory knows the id of."""
    if SLACK_USER_ID.fullmatch(user):
        return user
    if "@" in user:
        slack_id = directory.identity(user, clock.now()).slack_id
        if slack_id and SLACK_USER_ID.fullmatch(slack_id):
            return slack_id
        raise UnknownUser(f"no Slack user id is known for {user}; give the Slack user id (U…) instead")
    raise UnknownUser(f"{user!r} is neither a Slack user id (U…) nor an email")


def reset_mfa(
    db: Database, events: Events, clock: Clock, user_id: str, *, actor: str, reason: str, details: dict[str, str]
) -> None:
    """Remove ``user_id``'s MFA enrolment and audit it; :class:`NotFound` when there is none."""
    now = clock.now()
    with db.begin() as session:
        if not delete_enrolment(session=session, user_id=user_id):
            raise NotFound(f"{user_id} has no MFA enrolment: nothing to reset")
        events.record(session, now, "mfa_reset", actor, details={"user": user_id, "reason": reason, **details})
