"""The workspace's copy kept in the database after every full load, so a start does not wait for Slack.

A full load of a 10,000-person workspace is 50 ``users.list`` pages of 200: half a minute at Slack's latency
(0.6 s a call), and minutes once Slack's rate limit for the method (about 20 calls a minute) applies — every
start, on every replica. :meth:`RosterSnapshots.save` keeps what a full load read (the few fields a
:class:`~bot.slack.roster.SlackUser` holds, each group's handle and members); at the next start
:meth:`bot.slack.directory.SlackDirectory.start` serves from it at once and reads Slack again in the
background. A snapshot older than ``max_age`` is not used: that start reads Slack first, as without one.

What the copy answers in the meantime is what a running bot answers between two full loads (up to an hour
old, kept current by events): whom to ask and who may request. The person clicking Approve or Deny is read from
Slack again at the click (``users.info``), whatever the copy says.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.slack.roster import SlackUser, UserGroup
from store import directory_snapshots as snapshot_store
from store.db import Database

log = logging.getLogger(__name__)

SOURCE = "slack"
MAX_AGE = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Snapshot:
    taken_at: datetime
    users: list[SlackUser]
    groups: list[UserGroup] | None  # None: the load that took it did not read user groups


class RosterSnapshots:
    def __init__(self, db: Database, now: Callable[[], datetime], *, max_age: timedelta = MAX_AGE) -> None:
        self.db = db
        self.now = now
        self.max_age = max_age

    def save(self, users: Sequence[SlackUser], groups: Sequence[UserGroup] | None) -> None:
        """Keep what a full load read; a failure is logged (the next full load tries again), never raised."""
        rows = [[u.id, u.email, u.deleted, u.is_bot, u.tz, u.real_name, u.updated] for u in users]
        kept = None if groups is None else [[g.id, g.handle, sorted(g.members)] for g in groups]
        try:
            with self.db.begin() as session:
                snapshot_store.save_snapshot(session=session, source=SOURCE, taken_at=self.now(), users=rows,
                                             groups=kept)
        except Exception:  # noqa: BLE001 — the copy in memory is what serves; the snapshot only speeds a start
            log.warning("could not keep a snapshot of the Slack directory", exc_info=True)

    def load(self) -> Snapshot | None:
        """The last snapshot, unless there is none, it is older than ``max_age`` or it cannot be read."""
        try:
            with self.db.read() as session:
                row = snapshot_store.load_snapshot(session=session, source=SOURCE)
                if row is None:
                    return None
                taken_at, users, groups = row.taken_at, row.users, row.groups
            age = self.now() - taken_at
            if age > self.max_age:
                log.info("the Slack directory's snapshot is %s old (more than %s): not used", _age(age),
                         _age(self.max_age))
                return None
            return Snapshot(taken_at, [_user(u) for u in users],
                            None if groups is None else [_group(g) for g in groups])
        except Exception:  # noqa: BLE001 — unreadable (another version's shape, a database error): read Slack
            log.warning("could not read the Slack directory's snapshot; reading Slack instead", exc_info=True)
            return None


def _user(row: Sequence[Any]) -> SlackUser:
    id_, email, deleted, is_bot, tz, real_name, updated = row
    return SlackUser(id=str(id_), email=None if email is None else str(email), deleted=bool(deleted),
                     is_bot=bool(is_bot), tz=None if tz is None else str(tz),
                     real_name=None if real_name is None else str(real_name), updated=int(updated))


def _group(row: Sequence[Any]) -> UserGroup:
    id_, handle, members = row
    return UserGroup(str(id_), str(handle), frozenset(str(m) for m in members))


def _age(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h" if minutes < 48 * 60 else f"{minutes // (24 * 60)} days"
