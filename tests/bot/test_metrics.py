"""/metrics figures an admin alerts on: grants by state, overdue timers, unsent Slack messages."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bot.lifecycle.requests import RequestInput
from bot.metrics import state_metrics
from integrations.base import ConnectorError, GrantSpec
from integrations.noop import NoopConnector
from store.db import Database
from tests.bot.fixtures import make_container


class RevokeFails(NoopConnector):
    def revoke(self, grant: GrantSpec) -> None:
        raise ConnectorError("backend down")


def figures(registry: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()  # type: ignore[arg-type]
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_show_live_grants_overdue_work_and_unsent_messages(db: Database) -> None:
    c, clock, noop = make_container(db)
    failing = RevokeFails(noop.name, noop.catalog())
    c.connectors["db"] = failing
    registry = state_metrics(db, clock)
    assert figures(registry)[("accessbot_grants", (("state", "active"),))] == 0

    alice = c.directory.identity("UALICE", clock.now())
    c.service.submit(RequestInput(alice, ["db/database/search"], "read_write", justification="metrics"))
    seen = figures(registry)
    assert seen[("accessbot_grants", (("state", "active"),))] == 1
    assert seen[("accessbot_due_work_overdue", ())] == 0
    assert seen[("accessbot_outbox_unsent", ())] >= 1  # the grantee's "you have access" DM, not sent here

    clock.advance(hours=2)  # past the 1 h expiry, and nobody ran the worker
    seen = figures(registry)
    assert seen[("accessbot_due_work_overdue", ())] >= 1
    assert seen[("accessbot_due_work_overdue_seconds", ())] >= timedelta(hours=1).total_seconds()

    c.worker.run_due()  # the revoke fails: the grant stays, being revoked
    seen = figures(registry)
    assert seen[("accessbot_grants", (("state", "revoking"),))] == 1
    assert seen[("accessbot_grants", (("state", "active"),))] == 0
    assert seen[("accessbot_due_work_overdue_seconds", ())] < timedelta(hours=1).total_seconds()
