"""Extending active grants (SPEC §5 Extend), and the reminder before expiry that offers it.

An extension is decided and written first, under row locks (the grants, then their request: the order every
writer of a grant takes), so concurrent clicks serialize and ``extend.max_times`` holds: the check and the
new expiry are one transaction. The connector is told afterwards by the due work ``extend:<grant>``, always
the expiry the database holds: it reads the committed ``expires_at``, calls the connector with it, and
finishes only if that is still the expiry — an extension committed meanwhile makes it run again, so the
connector's last ``until`` is the database's. One ``extend`` row per grant runs at a time (a running one is
never re-armed under its worker), and a crash leaves the row to be retried with the same idempotency key.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy.orm import Session

from bot.lifecycle.connector_work import ConnectorWork, grant_spec
from bot.lifecycle.granting import schedule_expiry
from bot.lifecycle.records import RequestRecord, flow_of
from integrations.base import ConnectorError, idempotency_key
from policy.durations import format_duration, parse_requested_hours
from policy.errors import InvalidRequest, InvalidState, NotFound
from policy.identity import Identity
from policy.states import GrantState
from store import connector_calls as call_ledger
from store import due_work
from store import grants as grant_store
from store import requests as request_store
from store.connector_calls import CallKey
from store.due_work import JobKey, JobKind
from store.models import Extension


class Extending(ConnectorWork):
    def extend(self, request_id: int, actor: Identity, hours: str | None = None) -> RequestRecord:
        """Extend the actor's active grants of a request by the flow's ``extend.each`` (or fewer hours)."""
        now = self.clock.now()
        with self.db.begin() as session:
            request = request_store.get_request(request_id, votes=False, session=session)
            if request is None:
                raise NotFound(f"There is no request #{request_id}.")
            flow = flow_of(request)
            candidates = self.actor_grants(request, actor, states=frozenset({GrantState.ACTIVE}))
            # lock them and read them again: a concurrent extension committed meanwhile is seen here
            locked = grant_store.get_grants([g.id for g in candidates], for_update=True, session=session)
            request = request_store.get_request(request_id, for_update=True, votes=False, session=session)
            assert request is not None
            grants = [g for g in locked if g.state == GrantState.ACTIVE]
            if not grants:
                raise InvalidState(f"Request #{request_id} has no active access of yours to extend.")
            if flow.extend.max_times == 0:
                raise InvalidRequest(f"Flow {flow.name} does not allow extensions; make a new request.")
            if any(g.expires_at is None for g in grants):
                raise InvalidRequest("This access does not expire; there is nothing to extend.")
            used = max(g.extensions_used for g in grants)
            if used >= flow.extend.max_times:
                raise InvalidRequest(
                    f"Request #{request_id} was already extended {used} time(s), the most flow {flow.name} allows."
                )
            delta = flow.extend.each if not hours else parse_requested_hours(hours, flow.extend.each)
            for grant in grants:
                assert grant.expires_at is not None
                until = grant.expires_at + delta
                session.add(Extension(grant_id=grant.id, actor_id=actor.key, created_at=now,
                                      previous_expiry=grant.expires_at, new_expiry=until))
                grant.expires_at = until
                grant.extensions_used += 1
                schedule_expiry(session, grant, self.policy.current.config.reminder_before)
                _tell_connector(session, grant.id, now)
                self.events.record(session, now, "extended", actor.key, request, grant=grant, details={
                    "by": format_duration(delta), "expires_at": until.isoformat(),
                    "extensions_used": grant.extensions_used,
                })
                self.events.notify(session, now, "access_extended", grant.grantee_id, request, grant=grant)
            session.flush()
            record = RequestRecord.of(request)
            ids = [g.id for g in grants]
        for grant_id in ids:
            self.run_now(JobKey(JobKind.EXTEND, grant_id))
        return record

    def execute_extend(self, grant_id: int) -> bool:
        """Due work ``extend``: tell the connector the expiry the database holds. Raises to retry later.

        While this runs it holds the row, so an extension committed meanwhile does not re-arm it: this sees the
        new expiry when its call returns (under the grant's lock, which an extension takes first) and calls
        again with it, so the connector's last ``until`` is the database's.
        """
        work = JobKey(JobKind.EXTEND, grant_id)
        while True:
            now = self.clock.now()
            with self.db.begin() as session:
                grant = grant_store.get_grant(grant_id, session=session)
                if grant is None or grant.state != GrantState.ACTIVE:
                    return True  # ended meanwhile: the revoke takes the access away
                until = grant.expires_at
                key = idempotency_key("extend", grant_id, until)
                spec = grant_spec(grant)
                proven = call_ledger.start_calls(calls=[CallKey(grant_id, "extend", key)], now=now,
                                                 session=session)
            if not proven[key]:
                try:
                    self.calls.call(f"extension of grant {grant_id} at {spec.integration}",
                                    partial(self.connector(spec.integration).extend, spec, until))
                except ConnectorError as exc:
                    with self.db.begin() as session:
                        call_ledger.fail_call(key=key, error=str(exc), session=session)
                    raise
            now = self.clock.now()
            with self.db.begin() as session:  # under the grant's lock, which an extension takes first
                grant = grant_store.get_grant(grant_id, for_update=True, session=session)
                call_ledger.finish_calls(keys=[key], now=now, session=session)
                if grant is None or grant.state != GrantState.ACTIVE or grant.expires_at == until:
                    due_work.finish_key(key=work, now=now, session=session)
                    return True
            # extended again while the connector was told the previous expiry: tell it the new one

    def remind(self, grant_id: int, expected: datetime | None) -> bool:
        """Due work ``remind``: the DM with an Extend button, unless the grant ended or was extended since."""
        now = self.clock.now()
        with self.db.begin() as session:
            grant = grant_store.get_grant(grant_id, session=session)
            if grant is None or grant.state != GrantState.ACTIVE or grant.expires_at is None or grant.expires_at <= now:
                return True  # gone, or already due to expire: a reminder now would be noise
            if expected is not None and grant.expires_at != expected:
                return True  # extended since: a new reminder is scheduled
            request = request_store.get_request(grant.request_id, session=session)
            self.events.notify(session, now, "expiry_reminder", grant.grantee_id, request, grant=grant)
            self.events.record(session, now, "reminded", "accessbot", request, grant=grant)
        return True


def _tell_connector(session: Session, grant_id: int, now: datetime) -> None:
    """Arm ``extend:<grant>`` due now — unless a worker runs it at this moment: it re-checks the expiry when
    its call returns (under the grant's lock, which this transaction holds) and runs again."""
    key = JobKey(JobKind.EXTEND, grant_id)
    running = due_work.lock_work(key=key, session=session)
    if running is not None and running.done_at is None and running.lease_until is not None \
            and running.lease_until > now:
        return
    due_work.schedule(key=key, due_at=now, session=session)
