"""Wiring: builds the database, policy, connectors, lifecycle service and worker from settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.clock import Clock, SystemClock
from bot.crypto import SecretBox
from bot.directory import ConfigDirectory, IdentityProvider
from bot.events import Events
from bot.grants import GrantRunner
from bot.policy_holder import PolicyHolder
from bot.service import AccessService
from bot.worker import Worker
from integrations.base import Connector, ConnectorContext, connector_factory
from policy.config import Config
from store.db import Database


@dataclass
class Container:
    db: Database
    policy: PolicyHolder
    directory: IdentityProvider
    clock: Clock
    events: Events
    connectors: dict[str, Connector]
    service: AccessService
    grants: GrantRunner
    worker: Worker
    secrets: SecretBox


def build_connectors(config: Config, env: Mapping[str, str], slack_client: Any = None) -> dict[str, Connector]:
    context = ConnectorContext(env=env, slack_client=slack_client)
    return {i.name: connector_factory(i.type)(i, context) for i in config.integrations}


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
) -> Container:
    clock = clock or SystemClock()
    directory = directory or ConfigDirectory(policy)
    events = Events(lambda: policy.current.config.audit_channel)
    if connectors is None:
        connectors = build_connectors(policy.current.config, env or {}, slack_client)
    service = AccessService(db, policy, directory, clock, events=events)
    grants = GrantRunner(db, policy, connectors, clock, events, secrets)
    service.grants = grants
    worker = Worker(db, service, grants, clock)
    return Container(db, policy, directory, clock, events, connectors, service, grants, worker, secrets)


def discover_resources(container: Container) -> dict[str, int]:
    """Ask connectors of integrations with ``discover: true`` for their catalog; returns counts per integration."""
    import logging

    from integrations.base import ConnectorError

    found = {}
    for integration in container.policy.current.config.integrations:
        if not getattr(integration, "discover", False) or integration.name not in container.connectors:
            continue
        try:
            found[integration.name] = container.connectors[integration.name].catalog()
        except ConnectorError as exc:
            logging.getLogger(__name__).warning("discovery of %s failed: %s", integration.name, exc)
    container.policy.set_discovered(found)
    return {name: len(resources) for name, resources in found.items()}
