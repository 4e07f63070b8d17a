"""Automatic flows (SPEC §5): users who match an automatic flow hold its targets' access while they match.

One :meth:`Reconciler.reconcile` pass compares what should be held with what is held:

* *wanted*: every user among the directory's candidates (plus on-call rotation members, plus everyone who
  holds an automatic grant now) gets, for every automatic flow they may use now (requestors, space, time
  window: ``CompiledPolicy.usable_flows(kind="automatic")``), one grant per target resource × permission;
* *held*: the grants of requests made under an automatic flow that are granting, active or being revoked,
  found by the request's flow snapshot, so the grants of a flow since removed from the config are found too.

A missing grant is written the way the service writes an automatically approved request: a request row
(``submitted`` and ``approved`` by ``accessbot``; the grantee is its requester, since the flow asked, not a
person), its grant intents in ``granting`` and the ``grant:<request>`` due work
(:func:`bot.lifecycle.intents.write`, as the service does), in one transaction; then it is granted inline
(``granted``). A held grant nobody should hold any more (the user left the group, the shift or the window is
over, the flow was removed) is revoked through :meth:`Revoking.revoke_grant`, audited with the reason.

Decisions:

* Automatic grants never expire (``expires_at`` is None): they are held while the user matches, and the
  reconciler ends them. ``grant_for`` bounds what a person may *request*; nobody requests these.
* The configuration is the source of truth: "Revoke now" on an automatic grant ends it, and the next pass
  grants it again while the user still matches. To take such access away, change the directory or the flow.
* A user whose identity cannot be looked up (Slack unavailable) keeps what they hold: an outage never revokes.
* A grant being revoked still counts as held, so a user who comes back is granted again once that revoke is
  done (a pass later), never twice at once. A grant that failed (retries exhausted) is tried again after
  :data:`RETRY_FAILED_AFTER`, not at every pass.
* Grants are written before revokes, so access that moves from one automatic flow to another is not cut off
  in between (connectors with ``shared_access`` keep it while another grant provides it).
* The pass runs as the due work ``reconcile`` (one row, dedupe key ``reconcile``) that re-arms itself every
  ``every``, also after a failed pass. The claim's lease lets one replica run it at a time; in addition each
  request is written under a lock on that row after re-reading what the grantee holds, so even a pass that
  outlives its lease never grants twice. A config reload brings the next pass forward (:meth:`hasten`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from bot.clock import Clock
from bot.lifecycle import intents as grant_intents
from bot.lifecycle.connector_work import RunNow, run_later
from bot.lifecycle.directory import IdentityProvider
from bot.lifecycle.events import Events
from bot.lifecycle.policy_holder import PolicyHolder
from bot.lifecycle.revoking import Revoking
from policy.config import Flow
from policy.flows import MAX_RESOURCES_PER_REQUEST, CompiledFlow, CompiledPolicy, FlowChoice
from policy.identity import Identity
from policy.resources import RISK_ORDER, Entitlement, Permission, Resource
from policy.states import HELD, RequestState
from store import due_work
from store import grants as grant_store
from store.db import Database
from store.due_work import JobKey, JobKind
from store.models import AccessRequest, Grant

log = logging.getLogger(__name__)

RECONCILE_KEY = JobKey(JobKind.RECONCILE)
RECONCILE_EVERY = timedelta(seconds=60)
RETRY_FAILED_AFTER = timedelta(hours=1)
ACTOR = "accessbot"

HeldKey = tuple[str, str, str, str]  # flow name, grantee key, resource key, permission name


@dataclass(frozen=True, slots=True)
class Wanted:
    """One grant an automatic flow says a user should hold now."""

    flow: Flow
    grantee: Identity
    resource: Resource
    permission: Permission

    @property
    def key(self) -> HeldKey:
        return (self.flow.name, self.grantee.key, self.resource.key, self.permission.name)


@dataclass(frozen=True, slots=True)
class Held:
    """A grant of an automatic flow's request, as read at the start of a pass."""

    grant_id: int
    flow_name: str
    grantee_id: str
    resource_key: str
    permission: str
    state: str

    @classmethod
    def of(cls, grant: Grant) -> Held:
        return cls(grant.id, grant.request.flow_name, grant.grantee_id, grant.resource_key, grant.permission,
                   grant.state)

    @property
    def key(self) -> HeldKey:
        return (self.flow_name, self.grantee_id, self.resource_key, self.permission)


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    requests: tuple[int, ...] = ()  # requests written for missing grants
    revoked: tuple[int, ...] = ()  # grants whose revoke was started
    unresolved: tuple[str, ...] = ()  # grantees whose identity could not be read (they keep their access)


def flow_entitlements(policy: CompiledPolicy, compiled: CompiledFlow) -> list[Entitlement]:
    """Every resource × permission the flow's targets give, once each."""
    found: dict[tuple[str, str], Entitlement] = {}
    for rule in compiled.rules:
        for entitlement in policy.catalog.entitlements(rule):
            found.setdefault((entitlement.resource.key, entitlement.permission.name), entitlement)
    return list(found.values())


def wanted_access(
    policy: CompiledPolicy, identities: Iterable[Identity], now: datetime
) -> dict[HeldKey, Wanted]:
    """What the automatic flows give these users at ``now`` (pure: the policy decides, nothing is written)."""
    targets: dict[str, list[Entitlement]] = {}
    wanted: dict[HeldKey, Wanted] = {}
    for identity in identities:
        for compiled in policy.usable_flows(identity, now, kind="automatic"):
            if compiled.name not in targets:
                targets[compiled.name] = flow_entitlements(policy, compiled)
            for entitlement in targets[compiled.name]:
                item = Wanted(compiled.flow, identity, entitlement.resource, entitlement.permission)
                wanted.setdefault(item.key, item)
    return wanted


def _batches(missing: Iterable[Wanted]) -> Iterator[list[Wanted]]:
    """One request per flow × grantee × integration × permission, of at most 100 resources."""
    groups: dict[tuple[str, str, str, str], list[Wanted]] = {}
    for item in missing:
        groups.setdefault((item.flow.name, item.grantee.key, item.resource.integration, item.permission.name),
                          []).append(item)
    for items in groups.values():
        for start in range(0, len(items), MAX_RESOURCES_PER_REQUEST):
            yield items[start:start + MAX_RESOURCES_PER_REQUEST]


def _risk(items: list[Wanted]) -> str:
    return max((e.risk for e in (Entitlement(i.resource, i.permission) for i in items)),
               key=RISK_ORDER.__getitem__, default="medium")


class Reconciler:
    def __init__(
        self,
        db: Database,
        events: Events,
        revoking: Revoking,
        policy: PolicyHolder,
        directory: IdentityProvider,
        clock: Clock,
        *,
        every: timedelta = RECONCILE_EVERY,
        run_now: RunNow = run_later,
    ) -> None:
        self.db = db
        self.events = events
        self.revoking = revoking
        self.run_now = run_now
        self.policy = policy
        self.directory = directory
        self.clock = clock
        self.every = every

    # --- scheduling ---------------------------------------------------------------------------------------

    def ensure_scheduled(self) -> None:
        """Arm the recurring ``reconcile`` due work unless it is (start-up; idempotent on every replica)."""
        try:
            with self.db.begin() as session:
                due_work.ensure_work(key=RECONCILE_KEY, due_at=self.clock.now(), session=session)
        except IntegrityError:
            log.debug("another replica armed the reconcile work at the same moment")

    def hasten(self) -> None:
        """Run the next pass at the next tick (after a config reload) instead of waiting for the interval."""
        with self.db.begin() as session:
            due_work.hasten_work(key=RECONCILE_KEY, due_at=self.clock.now(), session=session)

    def run_scheduled(self) -> ReconcileResult:
        """Due work ``reconcile``: one pass, then the timer re-armed for the next (also after a failure)."""
        try:
            return self.reconcile()
        finally:
            with self.db.begin() as session:
                due_work.schedule(key=RECONCILE_KEY, due_at=self.clock.now() + self.every, session=session)

    # --- one pass -----------------------------------------------------------------------------------------

    def reconcile(self) -> ReconcileResult:
        now = self.clock.now()
        policy = self.policy.current
        with self.db.begin() as session:
            held = [Held.of(g) for g in grant_store.automatic_grants(failed_since=now - RETRY_FAILED_AFTER,
                session=session)]
        people, unresolved = self._people(policy, {h.grantee_id for h in held}, now)
        wanted = wanted_access(policy, {i.key: i for i in people.values()}.values(), now)
        try:
            requests = self._grant_missing(wanted, {h.key for h in held}, now)
        finally:  # a failed grant never holds up a revoke
            revoked = self._revoke_unwanted(policy, held, wanted, people, unresolved, now)
        if requests or revoked:
            log.info("reconcile: %d request(s) granted, %d grant(s) revoked", len(requests), len(revoked))
        return ReconcileResult(tuple(requests), tuple(revoked), tuple(sorted(unresolved)))

    def _grant_missing(
        self, wanted: dict[HeldKey, Wanted], occupied: set[HeldKey], now: datetime
    ) -> list[int]:
        """Write a request for every batch of wanted grants nobody holds, then grant them inline."""
        requests = [
            request_id
            for batch in _batches(item for key, item in wanted.items() if key not in occupied)
            if (request_id := self._write_request(batch, now)) is not None
        ]
        for request_id in requests:
            self.run_now(JobKey(JobKind.GRANT, request_id))
        return requests

    def _revoke_unwanted(
        self, policy: CompiledPolicy, held: list[Held], wanted: dict[HeldKey, Wanted],
        people: dict[str, Identity], unresolved: set[str], now: datetime,
    ) -> list[int]:
        """Start revoking the live grants no flow gives any more (kept for users who could not be read)."""
        revoked = []
        for item in held:
            if item.state not in HELD or item.key in wanted or item.grantee_id in unresolved:
                continue
            reason = _why_ended(policy, item, people.get(item.grantee_id), now)
            if self.revoking.revoke_grant(item.grant_id, reason=reason, actor=ACTOR):
                revoked.append(item.grant_id)
        return revoked

    def _people(
        self, policy: CompiledPolicy, holders: set[str], now: datetime
    ) -> tuple[dict[str, Identity], set[str]]:
        """Identities by key (and by the name a holder was stored under), and the names that failed to load.

        Without automatic flows the directory is not asked for its candidates (only current holders are
        looked up, to revoke what they hold).
        """
        people: dict[str, Identity] = {}
        if any(c.flow.type == "automatic" for c in policy.flows.values()):
            for identity in self.directory.candidates(now):
                people.setdefault(identity.key, identity)
            holders = holders | {m for s in policy.config.directory.oncall if s.rotation for m in s.rotation.members}
        known = {name for identity in people.values() for name in identity.ids}
        unresolved: set[str] = set()
        for name in sorted(holders):
            if name in people or name.lower() in known:
                continue
            try:
                identity = self.directory.identity(name, now)
            except Exception:  # noqa: BLE001 — an unreadable identity keeps its access; the next pass tries again
                log.warning("reconcile: could not look up %s; their automatic access stays", name,
                            exc_info=True)
                unresolved.add(name)
                continue
            people.setdefault(name, identity)
            people.setdefault(identity.key, identity)
            known |= identity.ids
        return people, unresolved

    def _write_request(self, batch: list[Wanted], now: datetime) -> int | None:
        """Write one automatically approved request with its grant intents; None when all is held now."""
        first = batch[0]
        flow, grantee, permission = first.flow, first.grantee, first.permission
        with self.db.begin() as session:
            due_work.lock_work(key=RECONCILE_KEY, session=session)  # writers of automatic requests take turns
            holding = {Held.of(g).key for g in grant_store.automatic_grants(grantee_id=grantee.key,
                failed_since=now - RETRY_FAILED_AFTER, session=session)}
            todo = [item for item in batch if item.key not in holding]
            if not todo:
                return None
            row = AccessRequest(
                state=RequestState.GRANTING,
                flow_name=flow.name,
                flow_snapshot={"flow": flow.model_dump(mode="json", by_alias=True), "risk": _risk(todo)},
                requester_id=grantee.key,
                requester_email=grantee.email,
                grantee_ids=[grantee.key],
                integration=first.resource.integration,
                permission=permission.name,
                resource_keys=[item.resource.key for item in todo],
                duration_seconds=None,
                justification=f"Automatic flow {flow.name}: held while you match it.",
                escalation_tier=0,
                created_at=now,
                updated_at=now,
                decided_at=now,
                decided_by=ACTOR,
            )
            session.add(row)
            session.flush()
            self.events.record(session, now, "submitted", ACTOR, row, details={
                "flow": flow.name, "automatic_flow": True, "resources": row.resource_keys,
                "permission": row.permission, "grantees": row.grantee_ids, "duration_seconds": None,
            })
            self.events.record(session, now, "approved", ACTOR, row, details={
                "automatic": True, "reason": f"matches flow {flow.name}",
            })
            choice = FlowChoice(
                flow=flow, resources=tuple(item.resource for item in todo), permission=permission,
                max_duration=None, require_duration=False, require_mfa=False, require_justification=False,
                automatic_approval=True,
            )
            grant_intents.write(session, self.events, row, grantee, [grantee], choice, now)
            return row.id


def _why_ended(policy: CompiledPolicy, held: Held, identity: Identity | None, now: datetime) -> str:
    compiled = policy.flows.get(held.flow_name)
    if compiled is None:
        return f"flow {held.flow_name} was removed from the configuration"
    if compiled.flow.type != "automatic":
        return f"flow {held.flow_name} is no longer automatic"
    usable = () if identity is None else policy.usable_flows(identity, now, kind="automatic")
    if all(c.name != held.flow_name for c in usable):
        return f"no longer matches flow {held.flow_name}"
    return f"no longer a target of flow {held.flow_name}"
