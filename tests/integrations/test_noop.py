"""The no-op connector records what it was asked to do and nothing else."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from integrations.base import Connector, ConnectorContext, GrantSpec, connector_factory
from integrations.noop import NoopConnector
from policy.resources import Permission, Resource

RESOURCE = Resource(integration="trial", type="service", name="sandbox")


def _spec(grant_id: int) -> GrantSpec:
    return GrantSpec(
        grant_id=grant_id,
        request_id=1,
        grantee_slack_id="U1",
        grantee_email=None,
        integration="trial",
        resource=RESOURCE,
        permission=Permission(integration="trial", name="member"),
        expires_at=None,
    )


def test_noop_records_calls_and_returns_a_reference() -> None:
    connector = NoopConnector("trial", [RESOURCE])
    assert isinstance(connector, Connector)
    assert connector.catalog() == [RESOURCE]

    assert connector.grant(_spec(5)).external_ref == "noop:5"
    connector.extend(_spec(5), None)
    connector.revoke(_spec(5))

    assert connector.calls == [("grant", 5), ("extend", 5), ("revoke", 5)]


def test_noop_is_thread_safe() -> None:
    connector = NoopConnector("trial", [])
    threads = [
        threading.Thread(target=lambda n=n: [connector.grant(_spec(n)) for _ in range(200)]) for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(connector.calls) == 1600


def test_noop_factory() -> None:
    @dataclass
    class Config:
        name: str = "trial"

        def catalog_resources(self) -> list[Resource]:
            return [RESOURCE]

    connector = connector_factory("noop")(Config(), ConnectorContext(env={}))
    assert connector.name == "trial" and connector.catalog() == [RESOURCE]
