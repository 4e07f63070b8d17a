"""Automatic flows (SPEC §5) on SQLite and PostgreSQL: the reconciler grants to users who match and revokes
from those who no longer do (group left, shift over, flow removed), idempotently, as recurring due work."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.container import Container
from bot.lifecycle.automatic import RECONCILE_KEY, Reconciler
from bot.lifecycle.directory import ConfigDirectory
from bot.lifecycle.requests import RequestInput
from integrations.base import ConnectorError, GrantResult, GrantSpec
from integrations.noop import NoopConnector
from policy.identity import Identity
from policy.validation import load_config_text
from store import audit as audit_log
from store.db import Database
from store.due_work import JobKey
from store.models import AccessRequest, DueWork, Grant
from tests.bot.fixtures import START, make_container

CONFIG = """
admins: [secops@example.com]
directory:
  users:
    - {email: alice@example.com, slack_id: UALICE, groups: [sre]}
    - {email: bob@example.com, slack_id: UBOB, groups: [dev]}
    - {email: dana@example.com, slack_id: UDANA, groups: [dba]}
  oncall:
    - schedule: db-primary
      timezone: UTC
      rotation: {every: 1d, starts: "2026-11-23T00:00", members: [dana@example.com, bob@example.com]}
integrations:
  - name: db
    type: noop
    resources:
      - {type: database, name: billing, tags: {env: prod}}
      - {type: database, name: search, tags: {env: staging}}
    permissions: {read_only: {roles: [ro]}, read_write: {roles: [rw], risk_level: high}}
flows:
  - name: sre-read
    type: automatic
    requestors: {conditions: [{attribute: group, op: is, values: [sre]}]}
    targets: [{integration: db, permissions: [read_only], resources: {any: true}}]
  - name: oncall-write
    type: automatic
    requestors: {conditions: [{attribute: oncall, op: is, values: [db-primary]}]}
    targets: [{integration: db, permissions: [read_write], resources: {names: [billing]}}]
  - name: dev-self-serve
    requestors: {conditions: [{attribute: group, op: is, values: [dev]}]}
    targets: [{integration: db, permissions: [read_only], resources: {names: [search]}}]
    grant_for: 2h
"""

BOB_IN_SRE = CONFIG.replace("UBOB, groups: [dev]", "UBOB, groups: [dev, sre]")


def reconciler(c: Container) -> Reconciler:
    return c.worker.reconciler


def grants_of(db: Database, grantee: str) -> list[Grant]:
    with db.begin() as session:
        stmt = select(Grant).where(Grant.grantee_id == grantee).order_by(Grant.id)
        return list(session.scalars(stmt))


def audit(db: Database, request_id: int) -> list[tuple[str, str]]:
    with db.begin() as session:
        return [(e.event, e.actor) for e in audit_log.audit_events(request_id=request_id, session=session)]


def due(db: Database, key: JobKey) -> DueWork:
    with db.begin() as session:
        row = session.scalars(select(DueWork).where(DueWork.dedupe_key == str(key))).one()
        session.expunge(row)
        return row


def test_group_member_is_granted_within_one_reconcile_and_revoked_when_removed(db: Database) -> None:
    c, clock, noop = make_container(db, CONFIG)
    first = reconciler(c).reconcile()
    assert len(first.requests) == 2  # alice's sre-read, dana's oncall-write (on shift now)
    assert grants_of(db, "UBOB") == []
    before = len(noop.calls)

    c.policy.replace(load_config_text(BOB_IN_SRE))  # bob joins the group
    added = reconciler(c).reconcile()
    assert len(added.requests) == 1 and added.revoked == ()
    bob = grants_of(db, "UBOB")
    assert sorted(g.resource_key for g in bob) == ["db/database/billing", "db/database/search"]
    assert {(g.state, g.permission, g.expires_at) for g in bob} == {("active", "read_only", None)}
    assert noop.calls[before:] == [("grant", g.id) for g in bob]
    request = c.service.get(added.requests[0])
    assert (request.state, request.flow_name, request.requester_id, request.duration) == (
        "active", "sre-read", "UBOB", None)
    assert "held while you match" in request.justification
    assert audit(db, request.id) == [("submitted", "accessbot"), ("approved", "accessbot"),
                                     ("granted", "accessbot"), ("granted", "accessbot")]

    calls = len(noop.calls)
    again = reconciler(c).reconcile()  # nothing changed: nothing to do
    assert (again.requests, again.revoked) == ((), ())
    assert len(noop.calls) == calls

    c.policy.replace(load_config_text(CONFIG))  # bob leaves the group
    removed = reconciler(c).reconcile()
    assert sorted(removed.revoked) == [g.id for g in bob] and removed.requests == ()
    assert noop.calls[calls:] == [("revoke", g.id) for g in bob]
    ended = {(g.state, g.end_reason) for g in grants_of(db, "UBOB")}
    assert ended == {("revoked", "no longer matches flow sre-read")}
    assert c.service.get(request.id).state == "revoked"
    assert audit(db, request.id)[4:] == [("revoke_started", "accessbot"), ("revoked", "accessbot")] * 2
    assert reconciler(c).reconcile() == type(removed)()  # and a further pass changes nothing
    assert len(noop.calls) == calls + 2
    alice = grants_of(db, "UALICE")
    assert {g.state for g in alice} == {"active"}  # the others keep theirs


def test_oncall_shift_end_revokes_and_the_next_member_is_granted(db: Database) -> None:
    c, clock, noop = make_container(db, CONFIG)
    reconciler(c).reconcile()
    [dana] = grants_of(db, "UDANA")
    assert (dana.state, dana.permission, dana.resource_key) == ("active", "read_write", "db/database/billing")

    clock.advance(hours=14, minutes=59)  # still dana's shift (it ends 2026-11-24 00:00 UTC)
    assert reconciler(c).reconcile().revoked == ()

    clock.set(datetime(2026, 11, 24, 0, 0, 1, tzinfo=START.tzinfo))  # bob's shift
    result = reconciler(c).reconcile()
    assert result.revoked == (dana.id,)
    [ended] = grants_of(db, "UDANA")
    assert (ended.state, ended.end_reason) == ("revoked", "no longer matches flow oncall-write")
    [bob] = grants_of(db, "UBOB")
    assert (bob.state, bob.permission) == ("active", "read_write")
    assert noop.calls[-2:] == [("grant", bob.id), ("revoke", dana.id)]  # granted before revoking


def test_a_closed_window_revokes_and_the_next_opening_grants_again(db: Database) -> None:
    flow = "  - name: sre-read\n    type: automatic\n"
    office_hours = CONFIG.replace(flow, flow + '    when: {from: "08:00", to: "20:00"}\n')
    c, clock, noop = make_container(db, office_hours)
    reconciler(c).reconcile()
    first = grants_of(db, "UALICE")
    assert {g.state for g in first} == {"active"}

    clock.set(START.replace(hour=20))
    assert sorted(reconciler(c).reconcile().revoked) == [g.id for g in first]
    assert {g.end_reason for g in grants_of(db, "UALICE")} == {"no longer matches flow sre-read"}

    clock.set(START.replace(day=24, hour=8))
    reconciler(c).reconcile()
    states = [g.state for g in grants_of(db, "UALICE")]
    assert states == ["revoked", "revoked", "active", "active"]


def test_flow_removed_from_the_config_revokes_and_self_serve_grants_are_left_alone(db: Database) -> None:
    c, clock, noop = make_container(db, CONFIG)
    reconciler(c).reconcile()
    bob = c.directory.identity("UBOB", clock.now())
    own = c.service.submit(RequestInput(bob, ["db/database/search"], "read_only", justification="debugging"))
    assert own.request.state == "active"

    without = CONFIG.replace("""  - name: oncall-write
    type: automatic
    requestors: {conditions: [{attribute: oncall, op: is, values: [db-primary]}]}
    targets: [{integration: db, permissions: [read_write], resources: {names: [billing]}}]
""", "")
    c.policy.replace(load_config_text(without))
    result = reconciler(c).reconcile()
    [dana] = grants_of(db, "UDANA")
    assert result.revoked == (dana.id,)
    assert dana.state == "revoked"
    assert dana.end_reason == "flow oncall-write was removed from the configuration"
    assert c.service.get(own.request.id).state == "active"  # bob's own request is not the reconciler's
    assert {g.state for g in grants_of(db, "UALICE")} == {"active"}


def test_runs_as_recurring_due_work_through_the_worker(db: Database) -> None:
    c, clock, noop = make_container(db, CONFIG)
    reconciler(c).ensure_scheduled()
    reconciler(c).ensure_scheduled()  # every replica does this at start-up: still one row, still due now
    assert due(db, RECONCILE_KEY).due_at == clock.now()

    assert c.worker.run_due() == 1
    assert [g.state for g in grants_of(db, "UALICE")] == ["active", "active"]
    row = due(db, RECONCILE_KEY)
    assert (row.done_at, row.lease_until, row.due_at) == (None, None, clock.now() + timedelta(seconds=60))

    c.policy.replace(load_config_text(BOB_IN_SRE))
    assert c.worker.run_due() == 0  # not due yet
    reconciler(c).hasten()  # what a config reload does
    assert due(db, RECONCILE_KEY).due_at == clock.now()
    calls = len(noop.calls)
    assert c.worker.run_due() == 1
    assert [op for op, _ in noop.calls[calls:]] == ["grant", "grant"]
    assert {g.state for g in grants_of(db, "UBOB")} == {"active"}

    reconciler(c).ensure_scheduled()  # a restart leaves the armed timer where it is
    assert due(db, RECONCILE_KEY).due_at == clock.now() + timedelta(seconds=60)
    c.policy.replace(load_config_text(CONFIG))
    clock.advance(seconds=60)
    assert c.worker.run_due() == 1
    assert {g.state for g in grants_of(db, "UBOB")} == {"revoked"}


class _Refusing(NoopConnector):
    """A connector that refuses every grant for good (a permission error, not an outage)."""

    def grant(self, grant: GrantSpec) -> GrantResult:
        self._record("grant", grant.grant_id)
        raise ConnectorError("permission denied to create role", retryable=False)


def test_a_failed_grant_is_tried_again_after_an_hour_not_at_every_pass(db: Database) -> None:
    c, clock, noop = make_container(db, CONFIG)
    refusing = _Refusing("db", noop.catalog())
    c.connectors["db"] = refusing  # the grant runner reads this same mapping
    reconciler(c).reconcile()
    assert {g.state for g in grants_of(db, "UALICE")} == {"failed"}
    clock.advance(minutes=59)
    assert reconciler(c).reconcile().requests == ()
    clock.advance(minutes=2)
    c.connectors["db"] = noop  # fixed meanwhile
    assert len(reconciler(c).reconcile().requests) == 2
    assert [g.state for g in grants_of(db, "UALICE")] == ["failed", "failed", "active", "active"]


class _Unreachable(ConfigDirectory):
    """The directory, except that one user cannot be looked up (a Slack outage for them)."""

    def __init__(self, c: Container, *names: str) -> None:
        super().__init__(c.policy)
        self.names = set(names)

    def identity(self, user: str, now: datetime) -> Identity:
        if user in self.names:
            raise RuntimeError("users.info: ratelimited")
        return super().identity(user, now)

    def candidates(self, now: datetime) -> list[Identity]:
        users = self.holder.current.config.directory.users
        return [self.identity(u.slack_id or u.email, now) for u in users if u.slack_id not in self.names]


def test_a_user_who_cannot_be_looked_up_keeps_their_access(db: Database) -> None:
    c, clock, noop = make_container(db, BOB_IN_SRE)
    reconciler(c).reconcile()
    held = grants_of(db, "UBOB")
    assert len(held) == 2
    flaky = Reconciler(c.db, c.events, c.revoking, c.policy, _Unreachable(c, "UBOB", "bob@example.com"), clock,
                       run_now=c.worker.run_now)
    result = flaky.reconcile()
    assert (result.revoked, result.unresolved) == ((), ("UBOB", "bob@example.com"))
    assert {g.state for g in grants_of(db, "UBOB")} == {"active"}


class _Racing(ConfigDirectory):
    """While this pass reads the directory, another pass (a replica whose lease ran out) grants everything."""

    def __init__(self, c: Container, other: Reconciler) -> None:
        super().__init__(c.policy)
        self.other = other

    def candidates(self, now: datetime) -> list[Identity]:
        self.other.reconcile()
        return super().candidates(now)


def test_two_overlapping_passes_never_grant_twice(db: Database) -> None:
    c, clock, noop = make_container(db, CONFIG)
    slow = Reconciler(c.db, c.events, c.revoking, c.policy, _Racing(c, reconciler(c)), clock,
                       run_now=c.worker.run_now)
    assert slow.reconcile().requests == ()  # it saw nothing held, but re-reads under the lock before writing
    with db.begin() as session:
        assert session.scalar(select(func.count()).select_from(AccessRequest)) == 2
    assert len(noop.calls) == 3 and {op for op, _ in noop.calls} == {"grant"}
