"""On-call from the incident tool: PagerDuty's and Opsgenie's REST APIs, read with httpx and cached.

``directory.oncall[]`` entries with ``pagerduty: {schedule_id, token_env}`` or ``opsgenie: {schedule, token_env}``
are read here; which answer counts for what is decided by the pure :func:`policy.oncall.provider_on_call`.

* PagerDuty: ``GET {ACCESSBOT_PAGERDUTY_API_URL}/oncalls?schedule_ids[]=ID&include[]=users&since=…&until=…``
  with ``Authorization: Token token=…``; each entry's ``user.email``, ``start`` and ``end`` (the window reaches
  :data:`HORIZON` ahead, so an answer a few seconds old is still right across a hand-over).
* Opsgenie: ``GET {ACCESSBOT_OPSGENIE_API_URL}/v2/schedules/NAME/on-calls?scheduleIdentifierType=name&flat=true``
  with ``Authorization: GenieKey …``; ``data.onCallRecipients`` are the usernames (emails) on call now.

Caching: every answer is kept per schedule. A decision (a click, a submission, a reconcile pass) re-reads a
schedule whose answer is older than ``decision_max_age`` (default 5 s) with a bounded timeout (default 2 s), so a
click never waits long; a background task (:meth:`OncallReadings.refresh_due`) re-reads every ``refresh_every``
(default 60 s). Every failure (network, HTTP status, a missing token, an answer of the wrong shape) is logged
and counted in ``accessbot_oncall_provider_errors_total{provider,schedule}`` on ``/metrics``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, ValidationError

from bot.clock import Clock
from bot.lifecycle.policy_holder import PolicyHolder
from policy.config import OncallSchedule
from policy.oncall import ProviderOncall, ProviderReading, ProviderShift, ProviderState, Purpose, provider_on_call

if TYPE_CHECKING:  # imported when a schedule is first read: a bot without an incident tool never loads httpx
    import httpx

log = logging.getLogger(__name__)

PAGERDUTY_API_URL = "https://api.pagerduty.com"
OPSGENIE_API_URL = "https://api.opsgenie.com"
HORIZON = timedelta(minutes=5)
MAX_PAGES = 5

PROVIDER_ERRORS = Counter(
    "accessbot_oncall_provider_errors",
    "Failed reads of an on-call schedule from the incident tool (PagerDuty, Opsgenie)",
    ["provider", "schedule"],
)


class ProviderError(Exception):
    """The incident tool could not be read; the message says why (never contains the token)."""


class OncallUnknown(Exception):
    """A schedule's on-call is not known yet (the tool never answered): automatic access stays as it is."""


# --- the two APIs' answers ----------------------------------------------------------------------------------


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _PagerDutyUser(_Lenient):
    email: str | None = None


class _PagerDutyOncall(_Lenient):
    user: _PagerDutyUser | None = None
    start: datetime | None = None
    end: datetime | None = None


class _PagerDutyPage(_Lenient):
    oncalls: list[_PagerDutyOncall]
    more: bool = False


class _OpsgenieData(_Lenient):
    onCallRecipients: list[str] = []  # noqa: N815 — Opsgenie's field name


class _OpsgenieAnswer(_Lenient):
    data: _OpsgenieData


@dataclass(frozen=True, slots=True)
class Endpoints:
    pagerduty: str = PAGERDUTY_API_URL
    opsgenie: str = OPSGENIE_API_URL
    timeout_seconds: float = 2.0


Params = tuple[tuple[str, str], ...]  # a query string's pairs, repeated keys kept


def _get(http: httpx.Client, url: str, params: Params, headers: dict[str, str]) -> object:
    import httpx

    try:
        response = http.get(url, params=params, headers=headers)
    except httpx.TimeoutException:
        raise ProviderError(f"no answer from {url} in time") from None
    except httpx.HTTPError as exc:
        raise ProviderError(f"cannot reach {url}: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise ProviderError(f"{url} answered HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise ProviderError(f"{url} did not answer JSON") from None


def read_pagerduty(
    http: httpx.Client, base_url: str, schedule_id: str, token: str, now: datetime
) -> tuple[ProviderShift, ...]:
    """The on-call entries of a PagerDuty schedule from ``now`` to ``now + HORIZON``."""
    url = f"{base_url.rstrip('/')}/oncalls"
    shifts: list[ProviderShift] = []
    offset = 0
    for _ in range(MAX_PAGES):
        params = (("schedule_ids[]", schedule_id), ("include[]", "users"), ("since", now.isoformat()),
                  ("until", (now + HORIZON).isoformat()), ("limit", "100"), ("offset", str(offset)))
        try:
            answer = _PagerDutyPage.model_validate(_get(http, url, params, {
                "Authorization": f"Token token={token}", "Accept": "application/vnd.pagerduty+json;version=2"}))
        except ValidationError as exc:
            raise ProviderError(f"{url} answered an unexpected shape ({exc.error_count()} problem(s))") from None
        shifts += [ProviderShift(o.user.email, o.start, o.end) for o in answer.oncalls if o.user and o.user.email]
        offset += len(answer.oncalls)  # the server may cap `limit` below what was asked
        if not answer.more or not answer.oncalls:
            break
    return tuple(shifts)


def read_opsgenie(http: httpx.Client, base_url: str, schedule: str, token: str) -> tuple[ProviderShift, ...]:
    """Who is on call now for an Opsgenie schedule (by name)."""
    url = f"{base_url.rstrip('/')}/v2/schedules/{quote(schedule, safe='')}/on-calls"
    params = (("scheduleIdentifierType", "name"), ("flat", "true"))
    try:
        answer = _OpsgenieAnswer.model_validate(_get(http, url, params, {
            "Authorization": f"GenieKey {token}", "Accept": "application/json"}))
    except ValidationError as exc:
        raise ProviderError(f"{url} answered an unexpected shape ({exc.error_count()} problem(s))") from None
    return tuple(ProviderShift(email) for email in answer.data.onCallRecipients if email)


# --- the cache ----------------------------------------------------------------------------------------------

Key = tuple[str, str, str]  # schedule name, provider, the provider's schedule id or name


def _key(schedule: OncallSchedule) -> Key:
    if schedule.pagerduty is not None:
        return (schedule.schedule, "pagerduty", schedule.pagerduty.schedule_id)
    assert schedule.opsgenie is not None
    return (schedule.schedule, "opsgenie", schedule.opsgenie.schedule)


@dataclass
class _Entry:
    state: ProviderState
    attempted: float  # monotonic time of the latest attempt
    attempted_at: datetime  # clock time of the latest attempt
    lock: threading.Lock


class OncallReadings:
    """The latest answers of the incident tools for the config's provider schedules, re-read when due."""

    def __init__(
        self,
        holder: PolicyHolder,
        clock: Clock,
        *,
        env: Mapping[str, str],
        endpoints: Endpoints = Endpoints(),
        decision_max_age: float = 5.0,
        refresh_every: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.holder = holder
        self.clock = clock
        self.env = env
        self.endpoints = endpoints
        self.decision_max_age = decision_max_age
        self.refresh_every = refresh_every
        self.monotonic = monotonic
        self._transport = transport
        self._http: httpx.Client | None = None  # made at the first read
        self._entries: dict[Key, _Entry] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                import httpx

                self._http = httpx.Client(timeout=httpx.Timeout(self.endpoints.timeout_seconds),
                                          transport=self._transport)
            return self._http

    def schedules(self) -> list[OncallSchedule]:
        """The current config's schedules that are read from an incident tool."""
        return [s for s in self.holder.current.config.directory.oncall if s.provider is not None]

    def _entry(self, key: Key) -> _Entry:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = _Entry(ProviderState(), float("-inf"), datetime.min, threading.Lock())
                self._entries[key] = entry
            return entry

    def _read(self, schedule: OncallSchedule, now: datetime) -> tuple[ProviderShift, ...]:
        source = schedule.pagerduty or schedule.opsgenie
        assert source is not None
        token = self.env.get(source.token_env, "").strip()
        if not token:
            raise ProviderError(f"${source.token_env} (the API token) is not set")
        if schedule.pagerduty is not None:
            return read_pagerduty(self._client(), self.endpoints.pagerduty, schedule.pagerduty.schedule_id, token, now)
        assert schedule.opsgenie is not None
        return read_opsgenie(self._client(), self.endpoints.opsgenie, schedule.opsgenie.schedule, token)

    def refresh(self, schedule: OncallSchedule, *, older_than: float = 0.0) -> ProviderState:
        """Read the schedule again (unless another thread just did, within ``older_than`` seconds)."""
        entry = self._entry(_key(schedule))
        with entry.lock:  # one read per schedule at a time; the others then use its answer
            now = self.clock.now()
            if not self._due(entry, now, older_than):
                return entry.state
            try:
                shifts = self._read(schedule, now)
            except ProviderError as exc:
                PROVIDER_ERRORS.labels(schedule.provider, schedule.schedule).inc()
                kept = "the last good answer is kept for access held" if entry.state.last_good else "no answer yet"
                log.warning("on-call %s (%s) could not be read: %s; nobody on it may approve until it is, %s",
                            schedule.schedule, schedule.provider, exc, kept)
                entry.state = ProviderState(entry.state.last_good, failing=True)
            else:
                entry.state = ProviderState(ProviderReading(shifts, now), failing=False)
            entry.attempted, entry.attempted_at = self.monotonic(), now
            return entry.state

    def _due(self, entry: _Entry, now: datetime, older_than: float) -> bool:
        if older_than <= 0:
            return True
        by_clock = entry.attempted_at == datetime.min or abs((now - entry.attempted_at).total_seconds()) >= older_than
        return self.monotonic() - entry.attempted >= older_than or by_clock

    def refresh_due(self) -> int:
        """The background task: re-read every schedule last read ``refresh_every`` ago or more; returns how many."""
        count = 0
        for schedule in self.schedules():
            entry = self._entry(_key(schedule))
            if self._due(entry, self.clock.now(), self.refresh_every):
                self.refresh(schedule, older_than=self.refresh_every)
                count += 1
        return count

    def on_call(self, now: datetime, purpose: Purpose) -> dict[str, frozenset[str] | None]:
        """Schedule name -> who is on call, for a decision at ``now``; answers older than a few seconds re-read."""
        return {
            schedule.schedule: provider_on_call(
                self.refresh(schedule, older_than=self.decision_max_age), now, purpose)
            for schedule in self.schedules()
        }


def provider_oncall(readings: OncallReadings | None, now: datetime, purpose: Purpose) -> ProviderOncall | None:
    """What a directory passes to ``build_identity``; for ``hold``, raises :class:`OncallUnknown` before any answer."""
    if readings is None:
        return None
    answers = readings.on_call(now, purpose)
    unknown = sorted(name for name, emails in answers.items() if emails is None)
    if unknown:
        raise OncallUnknown(f"on-call of {', '.join(unknown)} not known yet (the incident tool has not answered)")
    return {name: emails for name, emails in answers.items() if emails is not None}


def on_call_emails(provider: ProviderOncall | None) -> list[str]:
    """Everyone on call on a provider schedule (to count them among the candidate approvers and holders)."""
    return sorted({email for emails in (provider or {}).values() for email in emails})
