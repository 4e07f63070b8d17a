"""Six Extend clicks at the same moment over the real signed HTTP endpoint, ``extend.max_times: 2``: exactly two
extensions, and the connector's last ``until`` is the expiry the database committed (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from integrations.base import GrantSpec, idempotency_key
from integrations.noop import NoopConnector
from store import audit as audit_log
from store.db import Database
from tests.handlers.conftest import Bot, running_bot
from tests.handlers.test_concurrency import at_once
from tests.handlers.test_e2e import submit_request

HOUR = timedelta(hours=1)  # the flow's extend.each


class RecordingConnector(NoopConnector):
    """A no-op connector that remembers every extension's ``until`` and key, in the order they arrived."""

    def __init__(self, inner: NoopConnector) -> None:
        super().__init__(inner.name, inner.catalog())
        self.extensions: list[tuple[int, datetime | None, str]] = []
        self._order = threading.Lock()

    def extend(self, grant: GrantSpec, until: datetime | None) -> None:
        time.sleep(0.02)  # a receiver that takes a moment: concurrent calls overlap
        with self._order:
            self.extensions.append((grant.grant_id, until, idempotency_key("extend", grant.grant_id, until)))
        super().extend(grant, until)


@pytest.fixture
def bot(db: Database) -> Iterator[Bot]:
    with running_bot(db) as running:
        yield running


def test_six_concurrent_extend_clicks_extend_twice(bot: Bot) -> None:
    recording = RecordingConnector(bot.noop)
    bot.container.connectors["db"] = recording  # the mapping every connector service shares
    request_id = submit_request(bot)  # read-any: 2 h, extend max_times 2, each 1 h
    approved = bot.sender.block_actions("UDANA", "approve", value=str(request_id), channel_id="DUDANA")
    assert approved.status == 200
    deadline = time.monotonic() + 10
    while bot.container.service.get(request_id).state != "active" and time.monotonic() < deadline:
        time.sleep(0.02)
    granted = bot.container.service.get(request_id)
    assert granted.state == "active" and granted.expires_at is not None

    def click() -> int:
        return bot.sender.block_actions("UALICE", "extend", value=str(request_id), channel_id="DUALICE").status

    assert at_once(*[click] * 6) == [200] * 6
    refusals = [c["text"] for c in bot.fake.wait_for("chat.postEphemeral", 4, timeout=10)]
    record = bot.container.service.get(request_id)
    deadline = time.monotonic() + 10
    while not (recording.extensions and recording.extensions[-1][1] == record.expires_at) \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    (grant,) = record.grants
    with bot.container.db.read() as session:
        extended = [e for e in audit_log.audit_events(request_id=request_id, session=session) if e.event == "extended"]
    assert len(extended) == 2 and grant.extensions_used == 2
    assert record.expires_at == granted.expires_at + 2 * HOUR
    assert len(refusals) == 4 and all("already extended 2 time(s)" in text for text in refusals), refusals
    # the connector was told only committed expiries, and last the database's
    untils = [until for _, until, _ in recording.extensions]
    assert untils[-1] == record.expires_at
    assert set(untils) <= {granted.expires_at + HOUR, granted.expires_at + 2 * HOUR}
    assert len({key for _, _, key in recording.extensions}) == len(set(untils))  # one key per extension
