"""Extending active grants (SPEC §5 Extend), and the reminder before expiry that offers it."""

from __future__ import annotations

from datetime import datetime

from bot.lifecycle.connector_work import ConnectorWork, grant_spec
from bot.lifecycle.granting import schedule_expiry
from bot.lifecycle.records import RequestRecord, flow_of
from policy.durations import format_duration, parse_requested_hours
from policy.errors import InvalidRequest, InvalidState, NotFound
from policy.identity import Identity
from policy.states import GrantState
from store import grants as grant_store
from store import requests as request_store
from store.models import Extension


class Extending(ConnectorWork):
    def extend(self, request_id: int, actor: Identity, hours: str | None = None) -> RequestRecord:
        """Extend the actor's active grants of a request by the flow's ``extend.each`` (or fewer hours)."""
        now = self.clock.now()
        with self.db.begin() as session:
            request = request_store.get_request(request_id, session=session)
            if request is None:
                raise NotFound(f"There is no request #{request_id}.")
            flow = flow_of(request)
            grants = self.actor_grants(request, actor, states=frozenset({GrantState.ACTIVE}))
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
            plans = [(g.id, grant_spec(g), g.expires_at + delta) for g in grants if g.expires_at]  # type: ignore[operator]
        for _, spec, until in plans:
            self.connector(spec.integration).extend(spec, until)
        with self.db.begin() as session:
            request = request_store.get_request(request_id, for_update=True, session=session)
            assert request is not None
            for grant_id, _, until in plans:
                grant = grant_store.get_grant(grant_id, for_update=True, session=session)
                if grant is None or grant.state != GrantState.ACTIVE:
                    continue
                session.add(Extension(grant_id=grant.id, actor_id=actor.key, created_at=now,
                                      previous_expiry=grant.expires_at, new_expiry=until))
                grant.expires_at = until
                grant.extensions_used += 1
                schedule_expiry(session, grant, self.policy.current.config.reminder_before)
                self.events.record(session, now, "extended", actor.key, request, grant=grant, details={
                    "by": format_duration(delta), "expires_at": until.isoformat(),
                    "extensions_used": grant.extensions_used,
                })
                self.events.notify(session, now, "access_extended", grant.grantee_id, request, grant=grant)
            session.flush()
            return RequestRecord.of(request)

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

