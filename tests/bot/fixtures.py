"""A small config and a wired container over a test database, with a fake clock and a no-op connector."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.fernet import Fernet

from bot.clock import FakeClock
from bot.container import Container, build
from bot.lifecycle.policy_holder import PolicyHolder
from bot.security.crypto import SecretBox
from integrations.noop import NoopConnector
from policy.validation import load_config_text
from store.db import Database

CONFIG = """
admins: [secops@example.com]
directory:
  users:
    - {email: alice@example.com, slack_id: UALICE, groups: [sre], manager: carol@example.com}
    - {email: bob@example.com, slack_id: UBOB, groups: [sre]}
    - {email: dana@example.com, slack_id: UDANA, groups: [dba]}
    - {email: erin@example.com, slack_id: UERIN, groups: [dba, security]}
    - {email: frank@example.com, slack_id: UFRANK, groups: [security]}
    - {email: carol@example.com, slack_id: UCAROL, groups: [managers]}
    - {email: cto@example.com, slack_id: UCTO, groups: [exec]}
    - {email: secops@example.com, slack_id: USECOPS, groups: [secops]}
integrations:
  - name: db
    type: noop
    resources:
      - {type: database, name: billing, tags: {env: prod}}
      - {type: database, name: search, tags: {env: staging}}
    permissions: {read_only: {roles: [ro]}, read_write: {roles: [rw], risk_level: high}}
flows:
  - name: read-any
    requestors: {conditions: [{attribute: group, op: is, values: [sre]}]}
    targets: [{integration: db, permissions: [read_only], resources: {any: true}}]
    grant_for: 4h
    require_duration: true
    extend: {max_times: 2, each: 1h}
    approval:
      type: approvers
      combine: any_of
      groups:
        - conditions: [{attribute: group, op: is, values: [dba]}]
      escalation: {every: 30m, tiers: [{conditions: [{attribute: user, op: is, values: [cto@example.com]}]}]}
      pending_timeout: 2h
  - name: write-prod
    requestors: {conditions: [{attribute: group, op: is, values: [sre]}]}
    targets: [{integration: db, permissions: [read_write], resources: {tags: {env: prod}}}]
    grant_for: 2h
    approval:
      type: approvers
      combine: all_of
      groups:
        - conditions: [{attribute: group, op: is, values: [dba]}]
        - conditions: [{attribute: group, op: is, values: [security]}]
  - name: staging-auto
    requestors: {conditions: [{attribute: group, op: is, values: [sre]}]}
    targets: [{integration: db, permissions: [read_write], resources: {names: [search]}}]
    grant_for: 1h
"""

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def make_container(db: Database, config_text: str = CONFIG) -> tuple[Container, FakeClock, NoopConnector]:
    config = load_config_text(config_text)
    clock = FakeClock(START)
    connector = NoopConnector("db", config.integrations[0].catalog_resources())
    container = build(
        db=db,
        policy=PolicyHolder.from_config(config),
        secrets=SecretBox([Fernet.generate_key().decode()]),
        clock=clock,
        connectors={"db": connector},
    )
    return container, clock, connector
