"""Delivers the durable outbox to Slack (SPEC §8): claim due rows, render them from the request now, post.

A tick drains the backlog in batches. Each batch is claimed in one transaction under a lease (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL), then sent in parallel across channels while each channel is paced to Slack's one
message per second (:mod:`bot.slack.pacing`; a channel whose next slot is further than ``max_wait`` away gets
the row back later). The rows sent are marked in one statement; App Homes touched by the tick are republished
once per user at its end. Each row is rendered and sent on its own: whatever goes wrong with one (a secret no
key decrypts, a rendering bug, a network error, Slack's refusal) fails or retries that row alone. A rate limit
(HTTP 429) puts the row back after ``Retry-After`` without counting an attempt; other failures back off a few
times, then are given up (state never depends on a message having been delivered).
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.clock import Clock, SystemClock
from bot.jobs.backoff import backoff
from bot.lifecycle.records import Notice, RequestRecord
from bot.security.crypto import SecretBox
from bot.slack.deliveries import retry_after
from bot.slack.pacing import CHANNEL_INTERVAL, ChannelPacer
from store import outbox as outbox_store
from store import requests as request_store
from store.db import Database, background_thread
from store.models import OutboxMessage

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 6
BATCH = 200
THREADS = 16
MAX_WAIT = 2.0  # seconds a channel's message may wait for its slot inside a tick
TICK_BUDGET = 10.0  # seconds of draining per tick; the rest waits for the next tick
Renderer = Callable[[Notice], dict[str, Any] | None]
HomePublisher = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    kind: str
    recipient: str | None
    request_id: int | None
    grant_id: int | None
    payload: dict[str, Any]
    secret: str | None
    attempts: int
    record: RequestRecord | None
    targets: tuple[tuple[str, str, str], ...]  # (pacing key, channel, ts): the messages chat.update rewrites


@dataclass(slots=True)
class _Outcome:
    """What happened to one row: sent (with the approval message it posted), put back, or failed."""

    sent: bool = False
    ref: tuple[str, str, str] | None = None  # (user, channel, ts) of a posted approval request
    later: float | None = None  # seconds: a rate limit or a busy channel, not a failed attempt
    error: str | None = None
    permanent: bool = False  # retrying cannot help (no key decrypts the secret)
    homes: set[str] = field(default_factory=set)


class OutboxSender:
    def __init__(
        self,
        db: Database,
        client: WebClient,
        renderer: Renderer,
        clock: Clock | None = None,
        secrets: SecretBox | None = None,
        *,
        publish_home: HomePublisher | None = None,
        threads: int = THREADS,
        batch: int = BATCH,
        channel_interval: float = CHANNEL_INTERVAL,
        max_wait: float = MAX_WAIT,
        tick_budget: float = TICK_BUDGET,
    ) -> None:
        self.db = db
        self.client = client
        self.renderer = renderer
        self.clock = clock or SystemClock()
        self.secrets = secrets
        self.publish_home = publish_home
        self.batch = batch
        self.max_wait = max_wait
        self.tick_budget = tick_budget
        self.pacer = ChannelPacer(channel_interval)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="outbox", initializer=background_thread)

    def send_due(self, *, limit: int | None = None) -> int:
        """Send everything due now (at most ``limit`` rows); returns how many rows were delivered."""
        started = time.monotonic()
        delivered, homes = 0, set[str]()
        while limit is None or delivered < limit:
            size = self.batch if limit is None else min(self.batch, limit - delivered)
            rows = self._claim(size, skip=self.pacer.busy(max_wait=self.max_wait))
            if not rows:
                break
            outcomes = self._send(rows)
            self._settle(rows, outcomes)
            delivered += sum(1 for o in outcomes.values() if o.sent)
            homes.update(user for o in outcomes.values() if o.sent for user in o.homes)
            if len(rows) < size or time.monotonic() - started > self.tick_budget:
                break
        self._publish_homes(homes)
        return delivered

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    # --- claim ----------------------------------------------------------------------------------------

    def _claim(self, size: int, skip: list[str]) -> list[_Row]:
        """Lease up to ``size`` due rows, none to the channels in ``skip`` (busy past ``max_wait``: claiming their
        backlog only to put it back would walk all of it every tick)."""
        now = self.clock.now()
        with self.db.begin() as session:
            claimed = outbox_store.claim_outbox(now=now, lease=LEASE, limit=size, is_postgres=self.db.is_postgres,
                                                skip_recipients=skip, session=session)
            ids = sorted({r.request_id for r in claimed if r.request_id is not None})
            records = {r.id: RequestRecord.of(r) for r in request_store.get_requests(ids, session=session)}
            targets: dict[int, tuple[tuple[str, str, str], ...]] = {}
            for request_id in {r.request_id for r in claimed if r.kind == "approval_update" and r.request_id}:
                refs = outbox_store.message_refs(request_id=request_id, purpose="approval", session=session)
                targets[request_id] = tuple((ref.user_id, ref.channel, ref.ts) for ref in refs)
            return [
                _Row(r.id, r.kind, r.recipient, r.request_id, r.grant_id, dict(r.payload or {}), r.secret, r.attempts,
                     records.get(r.request_id) if r.request_id is not None else None,
                     targets.get(r.request_id, ()) if r.kind == "approval_update" and r.request_id else ())
                for r in claimed
            ]

    # --- send: in parallel across channels, in order (and paced) within one -----------------------------------

    def _send(self, rows: list[_Row]) -> dict[int, _Outcome]:
        by_channel: dict[str, list[_Row]] = defaultdict(list)
        for row in rows:
            by_channel[_pacing_key(row)].append(row)
        outcomes: dict[int, _Outcome] = {}
        for result in self._pool.map(self._send_channel, by_channel.items()):
            outcomes.update(result)
        return outcomes

    def _send_channel(self, item: tuple[str, list[_Row]]) -> dict[int, _Outcome]:
        key, rows = item
        out: dict[int, _Outcome] = {}
        for row in rows:
            if row.kind == "approval_update":
                out[row.id] = self._deliver_safely(row, None)
                continue
            wait = self.pacer.reserve(key, max_wait=self.max_wait)
            if wait is None:  # the channel is busy: the rest of its rows go out in a later tick
                out[row.id] = _Outcome(later=self.pacer.wait_for(key))
                continue
            if wait > 0:
                time.sleep(wait)
            out[row.id] = self._deliver_safely(row, key)
        return out

    def _deliver_safely(self, row: _Row, key: str | None) -> _Outcome:
        try:
            return self._deliver(row)
        except SlackApiError as error:
            wait = retry_after(error)
            if wait is not None:
                if key is not None:  # the channel's other messages wait as long, in order, without a call each
                    self.pacer.hold(key, wait)
                return _Outcome(later=wait, error="ratelimited")
            return _Outcome(error=str(error.response.get("error") if error.response else error))
        except ValueError as error:  # SecretBox: no key decrypts the credentials; retrying cannot help
            return _Outcome(error=f"{type(error).__name__}: {error}", permanent="decrypt" in str(error))
        except Exception as error:  # noqa: BLE001 — one bad row (a rendering bug, the network) never stops the rest
            log.warning("outbox row %s (%s) failed", row.id, row.kind, exc_info=True)
            return _Outcome(error=f"{type(error).__name__}: {error}")

    def _deliver(self, row: _Row) -> _Outcome:
        credentials = None
        if row.secret and self.secrets is not None:
            credentials = json.loads(self.secrets.decrypt(row.secret))
        message = self.renderer(Notice(row.kind, row.recipient, row.record, row.grant_id, row.payload, credentials))
        outcome = _Outcome(sent=True, homes=_homes(row))
        if message is None:
            log.warning("outbox row %s (%s) has nothing to render; dropping it", row.id, row.kind)
            outcome.homes = set()
            return outcome
        if row.kind == "approval_update":
            for user_id, channel, ts in row.targets:  # every approver's message, each paced in its channel
                wait = self.pacer.reserve(user_id, max_wait=self.max_wait)
                if wait:
                    time.sleep(wait)
                self.client.chat_update(channel=channel, ts=ts, **message)
            return outcome
        if row.recipient is None:
            return outcome
        if row.kind == "channel_thread" and row.request_id is not None:  # under the request's channel message
            message = {**message, **self._thread_of(row.request_id, row.recipient)}
        posted = self.client.chat_postMessage(channel=row.recipient, **message)
        if row.kind == "approval_request" and row.request_id is not None:
            outcome.ref = (row.recipient, str(posted["channel"]), str(posted["ts"]))
        return outcome

    def _thread_of(self, request_id: int, channel: str) -> dict[str, str]:
        """``thread_ts`` of the approval message posted in ``channel`` (none yet: the reply goes top-level)."""
        with self.db.begin() as session:
            refs = outbox_store.message_refs(request_id=request_id, purpose="approval", session=session)
            return next(({"thread_ts": r.ts} for r in refs if r.user_id == channel), {})

    # --- settle: one transaction per batch, the sent rows marked in one statement -----------------------------

    def _settle(self, rows: list[_Row], outcomes: dict[int, _Outcome]) -> None:
        now = self.clock.now()
        sent = [row_id for row_id, o in outcomes.items() if o.sent]
        with self.db.begin() as session:
            if sent:
                session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(sent))
                                .values(sent_at=now, lease_until=None).execution_options(synchronize_session=False))
            for row in rows:
                outcome = outcomes.get(row.id) or _Outcome(error="not sent")
                if outcome.ref is not None and row.request_id is not None:
                    user_id, channel, ts = outcome.ref
                    outbox_store.save_message_ref(request_id=row.request_id, user_id=user_id, purpose="approval",
                                                  channel=channel, ts=ts, session=session)
                if not outcome.sent:
                    self._unsent(session, row, outcome, now)

    def _unsent(self, session: Session, row: _Row, outcome: _Outcome, now: datetime) -> None:
        message = session.get(OutboxMessage, row.id)
        if message is None:
            return
        message.lease_until = None
        if outcome.error:
            message.last_error = outcome.error[:500]
        if outcome.later is not None:  # a rate limit or a busy channel is not a failed attempt
            message.due_at = now + timedelta(seconds=max(outcome.later, 0.0))
            message.attempts = max(message.attempts - 1, 0)
        elif outcome.permanent or row.attempts >= MAX_ATTEMPTS:
            log.error("giving up on outbox row %s (%s): %s", row.id, row.kind, outcome.error)
            message.sent_at = now
        else:
            message.due_at = now + backoff(row.attempts)

    # --- App Homes: once per user per tick ----------------------------------------------------------------------

    def _publish_homes(self, users: Iterable[str]) -> None:
        if self.publish_home is None:
            return
        ordered = sorted(users)
        for user_id, error in zip(ordered, self._pool.map(self._publish_home, ordered), strict=True):
            if error is not None:
                log.warning("could not publish the App Home of %s: %s", user_id, error)

    def _publish_home(self, user_id: str) -> str | None:
        assert self.publish_home is not None
        try:
            self.publish_home(user_id)
        except Exception as error:  # noqa: BLE001 — a home that fails is republished after the next change
            return f"{type(error).__name__}: {error}"
        return None


def _pacing_key(row: _Row) -> str:
    if row.kind == "approval_update":  # it rewrites messages in several channels, each paced on its own
        return f"update:{row.id}"
    return row.recipient or f"none:{row.id}"


def _homes(row: _Row) -> set[str]:
    """Whose App Home shows this row's request (requester, grantees, and a user it was sent to)."""
    if row.record is None or row.kind == "audit_post":
        return set()
    users = {row.record.requester_id, *row.record.grantee_ids}
    if row.recipient and row.recipient.startswith(("U", "W")):
        users.add(row.recipient)
    return users
