"""Automatic access held by whoever PagerDuty has on call: it follows the hand-over, and an outage never revokes it
(neither after a good answer, nor before the first one)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet

from bot.clock import FakeClock
from bot.container import Container, build
from bot.lifecycle.directory import ConfigDirectory
from bot.lifecycle.oncall import Endpoints, OncallReadings
from bot.lifecycle.policy_holder import PolicyHolder
from bot.security.crypto import SecretBox
from integrations.noop import NoopConnector
from policy.validation import load_config_text
from store import grants as grant_store
from store.db import Database
from tests.bot.fixtures import START
from tests.support.fake_oncall import PD_TOKEN, FakeOncall, PagerDutyShift

CONFIG = """
directory:
  users:
    - {email: dana@example.com, slack_id: UDANA}
  oncall:
    - schedule: db-primary
      pagerduty: {schedule_id: PDB1, token_env: PAGERDUTY_TOKEN}
integrations:
  - name: db
    type: noop
    resources: [{type: database, name: billing}]
    permissions: {read_write: {roles: [rw]}}
flows:
  - name: oncall-write
    type: automatic
    requestors: {conditions: [{attribute: oncall, op: is, values: [db-primary]}]}
    targets: [{integration: db, permissions: [read_write], resources: {any: true}}]
"""


@pytest.fixture
def incident_tool() -> Iterator[FakeOncall]:
    fake = FakeOncall()
    fake.pagerduty["PDB1"] = [PagerDutyShift("dana@example.com", START - timedelta(days=1), None)]
    fake.start()
    yield fake
    fake.stop()


def wired(db: Database, fake: FakeOncall, clock: FakeClock, noop: NoopConnector) -> Container:
    holder = PolicyHolder.from_config(load_config_text(CONFIG))
    readings = OncallReadings(holder, clock, env={"PAGERDUTY_TOKEN": PD_TOKEN}, endpoints=Endpoints(fake.url))
    return build(db=db, policy=holder, secrets=SecretBox([Fernet.generate_key().decode()]), clock=clock,
                 directory=ConfigDirectory(holder, readings), connectors={"db": noop})


def holders(container: Container) -> dict[str, str]:
    with container.db.begin() as session:
        return {g.grantee_id: g.state for g in grant_store.automatic_grants(session=session)}


def test_held_access_follows_pagerduty_and_survives_its_outages(db: Database, incident_tool: FakeOncall) -> None:
    clock = FakeClock(START)
    noop = NoopConnector("db", load_config_text(CONFIG).integrations[0].catalog_resources())
    container = wired(db, incident_tool, clock, noop)
    reconciler = container.worker.reconciler
    reconciler.reconcile()
    assert holders(container) == {"UDANA": "active"}

    incident_tool.down = True  # PagerDuty fails; by its last answer dana would even be off by now
    incident_tool.pagerduty["PDB1"] = []
    clock.advance(minutes=5)
    assert reconciler.reconcile().revoked == ()
    assert holders(container) == {"UDANA": "active"}

    restarted = wired(db, incident_tool, clock, noop)  # a fresh replica that never had an answer
    result = restarted.worker.reconciler.reconcile()
    assert result.revoked == () and "UDANA" in result.unresolved
    assert holders(container) == {"UDANA": "active"}

    incident_tool.down = False  # back: the hand-over to erin (not in the directory) is followed
    incident_tool.pagerduty["PDB1"] = [PagerDutyShift("erin@example.com", START, None)]
    clock.advance(minutes=1)
    result = reconciler.reconcile()
    assert len(result.revoked) == 1 and len(result.requests) == 1
    assert holders(container) == {"erin@example.com": "active"}
    assert [call for call, _ in noop.calls] == ["grant", "grant", "revoke"]  # grants before revokes
