"""`discover: true` against the real PostgreSQL server: discovered databases become requestable."""

from __future__ import annotations

import os

import pytest
from sqlalchemy.engine import make_url

from bot.container import discover_resources
from bot.lifecycle.requests import RequestInput
from store.db import Database
from tests.bot.fixtures import CONFIG, make_container

PG = os.environ.get("ACCESSBOT_TEST_POSTGRES_URL")

DISCOVER = CONFIG.replace(
    "flows:\n",
    """  - name: pg
    type: postgresql
    dsn_env: TEST_PG_DSN
    discover: true
    permissions: {connect: {roles: []}}
flows:
  - name: pg-discovered
    requestors: {conditions: [{attribute: group, op: is, values: [sre]}]}
    targets: [{integration: pg, resource_type: database, permissions: [connect], resources: {any: true}}]
    grant_for: 1h
""",
    1,
)


@pytest.mark.skipif(not PG, reason="ACCESSBOT_TEST_POSTGRES_URL is not set")
def test_discovered_databases_are_offered(tmp_path: object) -> None:
    from bot.container import build_connectors

    db = Database(f"sqlite:///{tmp_path}/d.db")
    db.upgrade()
    container, clock, _ = make_container(db, DISCOVER)
    assert PG is not None
    container.connectors.update(
        {k: v for k, v in build_connectors(container.policy.current.config, {"TEST_PG_DSN": PG},
                                           installation_id=container.installation_id).items() if k == "pg"}
    )
    name = make_url(PG).database  # the database the server runs the tests in, whatever it is called
    assert name
    key = f"pg/database/{name}"
    alice = container.directory.identity("UALICE", clock.now())
    assert not [r for r in container.policy.current.requestable_resources(alice, clock.now(), name)
                if r.integration == "pg"]
    counts = discover_resources(container)
    assert counts["pg"] >= 1
    offered = [r for r in container.policy.current.requestable_resources(alice, clock.now(), name)
               if r.integration == "pg"]
    assert key in [r.key for r in offered]
    out = container.service.submit(RequestInput(alice, [key], "connect", justification="look"))
    assert out.request.state == "active"
    assert container.revoking.revoke(out.request.id, alice).state == "revoked"
