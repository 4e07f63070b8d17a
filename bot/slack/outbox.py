"""Delivers the durable outbox to Slack (SPEC §8): claim due rows, render them from the request now, post.

Each row is claimed under a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), sent, then marked ``sent_at``; a
rate limit (HTTP 429) reschedules the row after ``Retry-After``; other failures are retried with backoff a few
times, then given up (state never depends on a message having been delivered).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.clock import Clock
from bot.jobs.backoff import backoff
from bot.lifecycle.records import Notice, RequestRecord
from bot.security.crypto import SecretBox
from store import outbox as outbox_store
from store import requests as request_store
from store.db import Database
from store.models import OutboxMessage

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 6
Renderer = Callable[[Notice], dict[str, Any] | None]
HomePublisher = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    kind: str
    recipient: str | None
    request_id: int | None
    grant_id: int | None
    payload: dict[str, Any]
    secret: str | None
    attempts: int


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
    ) -> None:
        from bot.clock import SystemClock

        self.db = db
        self.client = client
        self.renderer = renderer
        self.clock = clock or SystemClock()
        self.secrets = secrets
        self.publish_home = publish_home

    def send_due(self, *, limit: int = 50) -> int:
        """Send everything due now; returns how many rows were delivered."""
        now = self.clock.now()
        with self.db.begin() as session:
            rows = outbox_store.claim_outbox(now=now, lease=LEASE, limit=limit, is_postgres=self.db.is_postgres,
                session=session
            )
            claimed = [
                _Claimed(
                    r.id,
                    r.kind,
                    r.recipient,
                    r.request_id,
                    r.grant_id,
                    dict(r.payload or {}),
                    r.secret,
                    r.attempts,
                )
                for r in rows
            ]
            records: dict[int, RequestRecord] = {}
            for row in claimed:
                if row.request_id is not None and row.request_id not in records:
                    found = request_store.get_request(row.request_id, session=session)
                    if found is not None:
                        records[row.request_id] = RequestRecord.of(found)
        delivered = 0
        homes: set[str] = set()
        for row in claimed:
            record = records.get(row.request_id) if row.request_id is not None else None
            try:
                refs = self._deliver(row, record)
            except SlackApiError as error:
                self._failed(row, error)
                continue
            with self.db.begin() as session:
                for user_id, channel, ts in refs:
                    assert row.request_id is not None
                    outbox_store.save_message_ref(request_id=row.request_id,
                        user_id=user_id,
                        purpose="approval",
                        channel=channel,
                        ts=ts, session=session
                    )
                self._mark(session, row.id, sent=True)
            delivered += 1
            if record is not None and row.kind != "audit_post":
                homes.update({record.requester_id, *record.grantee_ids})
                if row.recipient and row.recipient.startswith(("U", "W")):
                    homes.add(row.recipient)
        for user_id in sorted(homes):
            self._publish_home(user_id)
        return delivered

    def _deliver(self, row: _Claimed, record: RequestRecord | None) -> list[tuple[str, str, str]]:
        """Post (or update) the message; returns approval message refs to remember."""
        credentials = None
        if row.secret and self.secrets is not None:
            credentials = json.loads(self.secrets.decrypt(row.secret))
        message = self.renderer(
            Notice(row.kind, row.recipient, record, row.grant_id, row.payload, credentials)
        )
        if message is None:
            log.warning("outbox row %s (%s) has nothing to render; dropping it", row.id, row.kind)
            return []
        if row.kind == "approval_update":
            if row.request_id is None:
                return []
            with self.db.begin() as session:
                refs = [
                    (r.channel, r.ts)
                    for r in outbox_store.message_refs(request_id=row.request_id, purpose="approval", session=session)
                ]
            for channel, ts in refs:
                self.client.chat_update(channel=channel, ts=ts, **message)
            return []
        if row.recipient is None:
            return []
        if row.kind == "channel_thread" and row.request_id is not None:  # under the request's channel message
            message = {**message, **self._thread_of(row.request_id, row.recipient)}
        posted = self.client.chat_postMessage(channel=row.recipient, **message)
        if row.kind == "approval_request" and row.request_id is not None:
            return [(row.recipient, str(posted["channel"]), str(posted["ts"]))]
        return []

    def _thread_of(self, request_id: int, channel: str) -> dict[str, str]:
        """``thread_ts`` of the approval message posted in ``channel`` (none yet: the reply goes top-level)."""
        with self.db.begin() as session:
            refs = outbox_store.message_refs(request_id=request_id, purpose="approval", session=session)
            return next(({"thread_ts": r.ts} for r in refs if r.user_id == channel), {})

    def _failed(self, row: _Claimed, error: SlackApiError) -> None:
        now = self.clock.now()
        status = getattr(error.response, "status_code", None)
        with self.db.begin() as session:
            message = session.get(OutboxMessage, row.id)
            if message is None:
                return
            message.lease_until = None
            message.last_error = str(error.response.get("error") if error.response else error)[:500]
            if status == 429:
                retry_after = float((error.response.headers or {}).get("Retry-After", 1) or 1)
                message.due_at = now + timedelta(seconds=max(retry_after, 1))
                message.attempts = max(message.attempts - 1, 0)  # a rate limit is not a failed attempt
            elif row.attempts >= MAX_ATTEMPTS:
                log.error("giving up on outbox row %s (%s): %s", row.id, row.kind, message.last_error)
                message.sent_at = now
            else:
                message.due_at = now + backoff(row.attempts)

    def _mark(self, session: Any, row_id: int, *, sent: bool) -> None:
        message = session.get(OutboxMessage, row_id)
        if message is not None and sent:
            message.sent_at = self.clock.now()
            message.lease_until = None

    def _publish_home(self, user_id: str) -> None:
        if self.publish_home is None:
            return
        try:
            self.publish_home(user_id)
        except SlackApiError:
            log.warning("could not publish the App Home of %s", user_id, exc_info=True)
