"""The request lifecycle on SQLite and PostgreSQL: every transition with its audit event, idempotent repeats."""

from __future__ import annotations

import pytest

from bot.lifecycle.requests import RequestInput
from policy.errors import AlreadyDecided, InvalidDuration, NotEligible, Unapprovable
from store import audit as audit_log
from store.db import Database
from tests.bot.fixtures import make_container


def audit(db: Database, request_id: int) -> list[str]:
    with db.begin() as session:
        return [e.event for e in audit_log.audit_events(request_id=request_id, session=session)]


def test_submit_approve_active_expire(db: Database) -> None:
    c, clock, noop = make_container(db)
    alice = c.directory.identity("UALICE", clock.now())
    dana = c.directory.identity("UDANA", clock.now())
    out = c.service.submit(RequestInput(alice, ["db/database/billing"], "read_only", duration_hours="2",
                                        justification="INC-1 debugging"))
    assert out.request.state == "pending"
    assert set(out.approvers) == {"UDANA", "UERIN"}
    approved = c.service.approve(out.request.id, dana)
    assert approved.request.state == "active"
    assert noop.calls == [("grant", approved.request.grants[0].id)]
    again = c.service.approve(out.request.id, dana)
    assert not again.changed and again.request.state == "active"
    clock.advance(hours=2, seconds=1)
    assert c.worker.run_due() >= 1
    final = c.service.get(out.request.id)
    assert final.state == "expired"
    assert [op for op, _ in noop.calls] == ["grant", "revoke"]
    assert audit(db, out.request.id) == ["submitted", "vote", "approved", "granted", "revoke_started", "expired"]


def test_all_of_needs_both_groups_and_erin_alone_counts_for_both(db: Database) -> None:
    c, clock, _ = make_container(db)
    alice = c.directory.identity("UALICE", clock.now())
    out = c.service.submit(RequestInput(alice, ["db/database/billing"], "read_write", justification="migration"))
    r1 = c.service.approve(out.request.id, c.directory.identity("UDANA", clock.now()))
    assert r1.request.state == "pending"
    r2 = c.service.approve(out.request.id, c.directory.identity("UFRANK", clock.now()))
    assert r2.request.state == "active"
    out2 = c.service.submit(RequestInput(alice, ["db/database/billing"], "read_write", justification="again"))
    r3 = c.service.approve(out2.request.id, c.directory.identity("UERIN", clock.now()))
    assert r3.request.state == "active"


def test_deny_and_bad_approvers(db: Database) -> None:
    c, clock, noop = make_container(db)
    alice = c.directory.identity("UALICE", clock.now())
    out = c.service.submit(RequestInput(alice, ["db/database/billing"], "read_only", duration_hours="1",
                                        justification="x"))
    with pytest.raises(NotEligible):
        c.service.approve(out.request.id, alice)
    with pytest.raises(NotEligible):
        c.service.approve(out.request.id, c.directory.identity("UBOB", clock.now()))
    denied = c.service.deny(out.request.id, c.directory.identity("UERIN", clock.now()), "not now")
    assert denied.request.state == "denied"
    with pytest.raises(AlreadyDecided):
        c.service.approve(out.request.id, c.directory.identity("UDANA", clock.now()))
    assert noop.calls == []


@pytest.mark.parametrize("hours", ["0", "-1", "abc", "nan", "inf", "1e9", "5"])
def test_bad_durations_write_nothing(db: Database, hours: str) -> None:
    c, clock, _ = make_container(db)
    alice = c.directory.identity("UALICE", clock.now())
    with pytest.raises(InvalidDuration):
        c.service.submit(RequestInput(alice, ["db/database/billing"], "read_only", duration_hours=hours,
                                      justification="x"))
    assert c.service.list() == []


def test_automatic_flow_grants_at_once_and_revoke_now(db: Database) -> None:
    c, clock, noop = make_container(db)
    alice = c.directory.identity("UALICE", clock.now())
    out = c.service.submit(RequestInput(alice, ["db/database/search"], "read_write", justification="tests"))
    assert out.request.state == "active"
    revoked = c.revoking.revoke(out.request.id, alice)
    assert revoked.state == "revoked"
    assert [op for op, _ in noop.calls] == ["grant", "revoke"]
    assert c.revoking.revoke(out.request.id, alice).state == "revoked"
    assert [op for op, _ in noop.calls] == ["grant", "revoke"]


def test_extend_timeout_escalate_cancel(db: Database) -> None:
    c, clock, _ = make_container(db)
    alice = c.directory.identity("UALICE", clock.now())
    out = c.service.submit(RequestInput(alice, ["db/database/billing"], "read_only", duration_hours="1",
                                        justification="x"))
    clock.advance(minutes=31)
    c.worker.run_due()
    assert c.service.get(out.request.id).escalation_tier == 1
    cto = c.directory.identity("UCTO", clock.now())
    active = c.service.approve(out.request.id, cto)
    assert active.request.state == "active"
    before = active.request.expires_at
    extended = c.extending.extend(out.request.id, alice)
    assert extended.expires_at is not None and before is not None
    assert (extended.expires_at - before).total_seconds() == 3600
    second = c.service.submit(RequestInput(alice, ["db/database/billing"], "read_only", duration_hours="1",
                                           justification="y"))
    clock.advance(hours=2, minutes=1)
    c.worker.run_due()
    assert c.service.get(second.request.id).state == "timed_out"
    third = c.service.submit(RequestInput(alice, ["db/database/billing"], "read_only", duration_hours="1",
                                          justification="z"))
    assert c.service.cancel(third.request.id, alice).request.state == "canceled"
    assert not c.service.cancel(third.request.id, alice).changed


def test_unapprovable_request_is_refused_at_once(db: Database) -> None:
    from tests.bot.fixtures import CONFIG

    lonely = CONFIG.replace("values: [dba]}]\n      escalation", "values: [nobody]}]\n      escalation")
    c, clock, _ = make_container(db, lonely)
    alice = c.directory.identity("UALICE", clock.now())
    with pytest.raises(Unapprovable):
        c.service.submit(RequestInput(alice, ["db/database/billing"], "read_only", duration_hours="1",
                                      justification="x"))
    assert c.service.list() == []


def test_a_config_change_never_alters_a_request_in_flight(db: Database) -> None:
    from policy.validation import load_config_text
    from tests.bot.fixtures import CONFIG

    c, clock, _ = make_container(db)
    alice = c.directory.identity("UALICE", clock.now())
    out = c.service.submit(RequestInput(alice, ["db/database/billing"], "read_only", duration_hours="3",
                                        justification="x"))
    stricter = CONFIG.replace("grant_for: 4h", "grant_for: 1h").replace("values: [dba]}]\n      escalation",
                                                                         "values: [security]}]\n      escalation")
    c.policy.replace(load_config_text(stricter))
    with pytest.raises(InvalidDuration):  # a new request can no longer ask for 3h
        c.service.submit(RequestInput(alice, ["db/database/billing"], "read_only", duration_hours="3",
                                      justification="x"))
    approved = c.service.approve(out.request.id, c.directory.identity("UDANA", clock.now()))
    assert approved.request.state == "active"
    assert approved.request.expires_at is not None
    assert (approved.request.expires_at - clock.now()).total_seconds() == 3 * 3600
