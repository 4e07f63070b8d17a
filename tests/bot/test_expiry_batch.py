"""A batch of expiries writes what the one-grant path writes (``Events.record``, ``Revoking.end_grant``): per
grant its state changes, audit events (and their audit-channel and approval-thread copies), the notices to its
grantee and requester, the call ledger; its request closes with its last grant (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from bot.container import Container
from integrations.noop import NoopConnector
from store import grants as grant_store
from store.db import Database
from store.models import AccessRequest, AuditEvent, ConnectorCall, DueWork, Grant, OutboxMessage, table
from tests.bot.fixtures import CONFIG, START, make_container
from tests.bot.worker_process import RESOURCE

EXPIRED = {"reason": "expired"}


class SharedNoop(NoopConnector):
    """A connector whose grants of one access share it (like a Slack user group's membership)."""

    shared_access = True


def seed(db: Database, grants: list[dict[str, Any]], *, requester: str, channel: str | None = None,
         expires_at: datetime) -> list[int]:
    """One active request of ``requester`` holding ``grants`` (each: grantee, expiry, state), with their
    ``expire`` timers; returns the grant ids."""
    flow: dict[str, Any] = {"name": "staging-auto"} | ({"approval": {"channel": channel}} if channel else {})
    with db.begin() as session:
        (request_id,) = session.scalars(insert(table(AccessRequest)).returning(table(AccessRequest).c.id), [{
            "state": "active", "flow_name": "staging-auto", "flow_snapshot": {"flow": flow, "risk": "medium"},
            "requester_id": requester, "requester_email": None, "grantee_ids": [g["grantee"] for g in grants],
            "integration": "db", "permission": "read_write", "resource_keys": ["db/database/search"],
            "duration_seconds": 3600, "justification": "seeded", "escalation_tier": 0, "created_at": START,
            "updated_at": START}])
        ids = []
        for g in grants:
            grant_id = session.scalar(insert(table(Grant)).returning(table(Grant).c.id), {
                "request_id": request_id, "grantee_id": g["grantee"], "grantee_email": None, "integration": "db",
                "resource_key": "db/database/search", "resource": dict(RESOURCE), "permission": "read_write",
                "permission_spec": {"risk": "medium", "roles": ["rw"]}, "state": g.get("state", "active"),
                "created_at": START, "granted_at": START, "expires_at": g.get("expires_at", expires_at),
                "extensions_used": 0, "attempts": 0})
            session.execute(insert(table(DueWork)), {
                "kind": "expire", "dedupe_key": f"expire:{grant_id}", "request_id": request_id,
                "grant_id": grant_id, "due_at": g.get("expires_at", expires_at), "payload": {}, "attempts": 0})
            ids.append(grant_id)
    return ids


def written(db: Database, grant_ids: list[int]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The audit events and the outbox rows of these grants, in the order they were written."""
    with db.read() as session:
        events = [(e.grant_id, e.event, e.actor, e.details) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.grant_id.in_(grant_ids)).order_by(AuditEvent.id))]
        messages = [(m.grant_id, m.kind, m.recipient, m.payload) for m in session.scalars(
            select(OutboxMessage).where(OutboxMessage.grant_id.in_(grant_ids)).order_by(OutboxMessage.id))]
    return events, messages


def container(db: Database, connector: type[NoopConnector] = NoopConnector) -> tuple[Container, Any, NoopConnector]:
    c, clock, noop = make_container(db, "audit_channel: C0AUDIT\n" + CONFIG)
    if connector is not NoopConnector:
        noop = connector(noop.name, noop.catalog())
        c.connectors["db"] = noop
    return c, clock, noop


def test_a_batch_writes_per_grant_what_the_one_grant_path_writes(db: Database) -> None:
    c, clock, noop = container(db)
    due = clock.now() - timedelta(seconds=1)
    threaded = seed(db, [{"grantee": "UALICE"}], requester="UALICE", channel="C0DBA", expires_at=due)[0]
    for_other = seed(db, [{"grantee": "UBOB"}], requester="UALICE", expires_at=due)[0]
    c.worker.run_due()

    events, messages = written(db, [threaded])
    assert events == [(threaded, "revoke_started", "accessbot", EXPIRED), (threaded, "expired", "accessbot", EXPIRED)]
    assert messages == [
        (threaded, "audit_post", "C0AUDIT", {"event": "revoke_started", "actor": "accessbot", "details": EXPIRED}),
        (threaded, "audit_post", "C0AUDIT", {"event": "expired", "actor": "accessbot", "details": EXPIRED}),
        (threaded, "channel_thread", "C0DBA", {"event": "expired", "actor": "accessbot", "details": EXPIRED}),
        (threaded, "access_ended", "UALICE", {"state": "expired"}),  # grantee and requester: told once
    ]
    _, messages = written(db, [for_other])
    assert [(m[1], m[2]) for m in messages] == [("audit_post", "C0AUDIT"), ("audit_post", "C0AUDIT"),
                                                ("access_ended", "UBOB"), ("access_ended", "UALICE")]
    with db.read() as session:
        grants = {g.id: g for g in grant_store.get_grants([threaded, for_other], session=session)}
        assert {g.state for g in grants.values()} == {"expired"}
        assert all(g.ended_at == clock.now() and g.end_reason == "expired" for g in grants.values())
        assert {r.state for r in session.scalars(select(AccessRequest))} == {"expired"}
        calls = list(session.scalars(select(ConnectorCall).order_by(ConnectorCall.grant_id)))
        assert [(k.grant_id, k.action, k.idempotency_key, k.done_at) for k in calls] == [
            (threaded, "revoke", f"grant-{threaded}-revoke", clock.now()),
            (for_other, "revoke", f"grant-{for_other}-revoke", clock.now())]
        assert all(w.done_at is not None for w in session.scalars(select(DueWork)))
    assert sorted(g for op, g in noop.calls if op == "revoke") == [threaded, for_other]


def test_a_shared_access_kept_by_another_live_grant_is_not_revoked_and_says_so(db: Database) -> None:
    c, clock, shared = container(db, SharedNoop)
    later = clock.now() + timedelta(hours=1)
    expiring, keeping = seed(db, [{"grantee": "UALICE"}, {"grantee": "UALICE", "expires_at": later}],
                             requester="UALICE", expires_at=clock.now() - timedelta(seconds=1))
    c.worker.run_due()
    events, _ = written(db, [expiring])
    assert events[-1] == (expiring, "expired", "accessbot", EXPIRED | {"access_kept_by_grants": [keeping]})
    assert shared.calls == []  # the other grant still gives the access
    with db.read() as session:
        assert session.scalars(select(AccessRequest.state)).one() == "active"  # its other grant lives on
    clock.advance(hours=1, seconds=1)
    c.worker.run_due()
    events, _ = written(db, [keeping])
    assert events[-1] == (keeping, "expired", "accessbot", EXPIRED)
    assert shared.calls == [("revoke", keeping)]
    with db.read() as session:
        assert session.scalars(select(AccessRequest.state)).one() == "expired"


@pytest.mark.parametrize(("description", "states", "expected"), [
    ("every grant expired", ["expired", "expired"], "expired"),
    ("expired, and one that failed to be granted", ["expired", "failed"], "expired"),
    ("one expired, one revoked", ["expired", "revoked"], "revoked"),
    ("revoked", ["revoked"], "revoked"),
    ("a grant still active", ["expired", "active"], "active"),
    ("a grant still being revoked", ["expired", "revoke_failed"], "active"),
    ("nothing ever granted", ["failed"], "active"),
])
def test_close_ended_requests_as_close_if_ended(db: Database, description: str, states: list[str],
                                                 expected: str) -> None:
    grant_ids = seed(db, [{"grantee": "UALICE", "state": s} for s in states], requester="UALICE",
                     expires_at=START)
    with db.begin() as session:
        request_id = session.scalar(select(Grant.request_id).where(Grant.id == grant_ids[0]))
        assert request_id is not None
        grant_store.close_ended_requests([request_id], now=START + timedelta(hours=1), session=session)
    with db.read() as session:
        request = session.get(AccessRequest, request_id)
        assert request is not None and request.state == expected, description
        assert (request.updated_at == START + timedelta(hours=1)) == (expected != "active")

