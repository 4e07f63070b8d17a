"""Wiring: builds the database, policy, connectors, lifecycle service and worker from settings."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.clock import Clock, SystemClock
from bot.connector_metrics import MeteredConnector, unwrapped
from bot.jobs.worker import LEASE, Handlers, Worker
from bot.lifecycle.automatic import Reconciler
from bot.lifecycle.directory import ConfigDirectory, IdentityProvider
from bot.lifecycle.events import Events
from bot.lifecycle.extending import Extending
from bot.lifecycle.granting import Granting
from bot.lifecycle.policy_holder import PolicyHolder
from bot.lifecycle.requests import AccessService
from bot.lifecycle.revoking import Revoking
from bot.security.crypto import SecretBox
from bot.security.installation import installation_id
from bot.security.mfa import MfaService
from integrations.base import (
    Connector,
    ConnectorContext,
    ConnectorError,
    UnavailableConnector,
    connector_factory,
)
from policy.config import Config
from store.db import Database
from store.due_work import JobKey

log = logging.getLogger(__name__)


@dataclass
class Container:
    db: Database
    policy: PolicyHolder
    directory: IdentityProvider
    clock: Clock
    events: Events
    connectors: dict[str, Connector]
    service: AccessService
    granting: Granting
    extending: Extending
    revoking: Revoking
    worker: Worker
    secrets: SecretBox
    mfa: MfaService
    integration_configs: dict[str, Any] = field(default_factory=dict)  # what each connector was built from
    installation_id: str | None = None  # this installation's id (bot.security.installation), handed to connectors


    @property
    def reconciler(self) -> Reconciler:
        return self.worker.reconciler


def build_connectors(
    config: Config, env: Mapping[str, str], slack_client: Any = None, *, installation_id: str | None = None
) -> dict[str, Connector]:
    """One connector per integration; one that cannot be built (a missing secret) becomes unavailable.

    The bot still starts and every other integration works; the broken one's grants fail with the reason and
    are retried until an admin fixes it (see :func:`refresh_connectors`). Each is metered for ``/metrics``.
    """
    context = ConnectorContext(env=env, slack_client=slack_client, installation_id=installation_id)
    connectors: dict[str, Connector] = {}
    for integration in config.integrations:
        connector: Connector
        try:
            connector = connector_factory(integration.type)(integration, context)
        except ConnectorError as exc:
            log.error("integration %s is unavailable: %s", integration.name, exc)
            connector = UnavailableConnector(integration.name, str(exc))
        connectors[integration.name] = MeteredConnector(connector)
    return connectors


def unavailable_integrations(connectors: Mapping[str, Connector]) -> dict[str, str]:
    return {name: inner.reason for name, c in connectors.items()
            if isinstance(inner := unwrapped(c), UnavailableConnector)}


def refresh_connectors(container: Container, env: Mapping[str, str], slack_client: Any = None) -> list[str]:
    """After a config reload: rebuild the connectors whose integration changed, appeared or was unavailable.

    ``container.connectors`` is updated in place (the grant runner holds the same mapping). Connectors of
    removed integrations stay, so grants made through them can still be revoked. Returns the rebuilt names.
    """
    config = container.policy.current.config
    wanted = {i.name: i for i in config.integrations}
    changed = [
        name for name, integration in wanted.items()
        if name not in container.connectors
        or isinstance(unwrapped(container.connectors[name]), UnavailableConnector)
        or container.integration_configs.get(name) != integration
    ]
    if changed:
        subset = config.model_copy(update={"integrations": [wanted[name] for name in changed]})
        container.connectors.update(
            build_connectors(subset, env, slack_client, installation_id=container.installation_id)
        )
        container.integration_configs.update({name: wanted[name] for name in changed})
    return changed


def build(
    *,
    db: Database,
    policy: PolicyHolder,
    secrets: SecretBox,
    clock: Clock | None = None,
    directory: IdentityProvider | None = None,
    connectors: dict[str, Connector] | None = None,
    env: Mapping[str, str] | None = None,
    slack_client: Any = None,
    worker_threads: int = 1,
    lease: timedelta = LEASE,
) -> Container:
    clock = clock or SystemClock()
    directory = directory or ConfigDirectory(policy)
    events = Events(lambda: policy.current.config.audit_channel)
    installation = installation_id(db, now=clock.now())
    if connectors is None:
        connectors = build_connectors(policy.current.config, env or {}, slack_client, installation_id=installation)
    run_now = _RunNow()
    service = AccessService(db, policy, directory, clock, events=events, run_now=run_now)
    parts = (db, policy, connectors, clock, events, secrets, run_now)
    granting, extending, revoking = Granting(*parts), Extending(*parts), Revoking(*parts)
    reconciler = Reconciler(db, events, revoking, policy, directory, clock, run_now=run_now)
    worker = Worker(db, Handlers(service, granting, extending, revoking, reconciler), clock, threads=worker_threads,
                    lease=lease)
    run_now.worker = worker
    held_access = getattr(directory, "for_held_access", None)  # on-call kept through an incident-tool outage
    if callable(held_access):
        reconciler.directory = held_access()
    configs = {i.name: i for i in policy.current.config.integrations}
    return Container(db, policy, directory, clock, events, connectors, service, granting, extending, revoking, worker,
                     secrets, MfaService(db, clock, secrets), configs, installation)


class _RunNow:
    """Due work a service has just written runs at once, on the worker (built after the services, which only
    write the work: neither holds the other)."""

    worker: Worker | None = None

    def __call__(self, key: JobKey) -> bool:
        return self.worker.run_now(key) if self.worker is not None else False


def discover_resources(container: Container) -> dict[str, int]:
    """Ask connectors of integrations with ``discover: true`` for their catalog; returns counts per integration."""
    found = {}
    for integration in container.policy.current.config.integrations:
        if not getattr(integration, "discover", False) or integration.name not in container.connectors:
            continue
        try:
            found[integration.name] = container.connectors[integration.name].catalog()
        except ConnectorError as exc:
            log.warning("discovery of %s failed: %s", integration.name, exc)
    container.policy.set_discovered(found)
    return {name: len(resources) for name, resources in found.items()}
