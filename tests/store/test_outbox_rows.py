"""Messages queued for many recipients at once: one statement, in the order they were queued."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event, select

from store import outbox as outbox_store
from store.db import Database
from store.models import OutboxMessage

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def test_many_recipients_are_one_insert_after_what_was_queued_before_them(db: Database) -> None:
    inserts: list[str] = []
    with db.begin() as session:
        event.listen(session.get_bind(), "before_cursor_execute", lambda *args: inserts.append(str(args[2])))
        outbox_store.enqueue(session=session, now=NOW, kind="approval_request", recipient="C0CHANNEL", request_id=7)
        outbox_store.enqueue_many(session=session, now=NOW, kind="approval_request",
                                  recipients=["UDANA", "UERIN", "UFRANK"], request_id=7)
        outbox_store.enqueue_many(session=session, now=NOW, kind="approval_request", recipients=[], request_id=7)
    # the channel's row (queued first), then the three DMs in one statement
    assert [s.split()[2] for s in inserts if s.startswith("INSERT")] == ["outbox", "outbox"]
    with db.read() as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert [(r.recipient, r.kind, r.request_id, r.payload, r.sent_at, r.attempts) for r in rows] == [
            (who, "approval_request", 7, {}, None, 0) for who in ("C0CHANNEL", "UDANA", "UERIN", "UFRANK")]
