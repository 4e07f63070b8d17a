"""Approvers on call in PagerDuty / Opsgenie, over signed HTTP: eligibility follows the incident tool at each click,
and an outage makes nobody an approver (counted on /metrics)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.clock import FakeClock
from bot.lifecycle.oncall import Endpoints, OncallReadings
from bot.lifecycle.policy_holder import PolicyHolder
from store.db import Database
from tests.bot.fixtures import START
from tests.handlers.conftest import Bot, running_bot
from tests.handlers.test_e2e import buttons, dms_to, submit_request
from tests.support.fake_oncall import OG_KEY, PD_TOKEN, FakeOncall, PagerDutyShift

CONFIG = """
directory:
  users:
    - {email: alice@example.com, slack_id: UALICE, groups: [sre]}
    - {email: dana@example.com, slack_id: UDANA, groups: [dba]}
    - {email: erin@example.com, slack_id: UERIN, groups: [dba]}
    - {email: frank@example.com, slack_id: UFRANK, groups: [security]}
  oncall:
    - schedule: dba-oncall
      pagerduty: {schedule_id: PDBA001, token_env: PAGERDUTY_TOKEN}
    - schedule: security-oncall
      opsgenie: {schedule: security, token_env: OPSGENIE_TOKEN}
integrations:
  - name: db
    type: noop
    resources: [{type: database, name: billing}, {type: database, name: search}]
    permissions: {read_only: {roles: [ro]}}
flows:
  - name: read-any
    requestors: {conditions: [{attribute: group, op: is, values: [sre]}]}
    targets: [{integration: db, permissions: [read_only], resources: {any: true}}]
    grant_for: 4h
    require_duration: true
    approval:
      type: approvers
      groups:
        - conditions: [{attribute: oncall, op: is, values: [dba-oncall]}]
        - conditions: [{attribute: oncall, op: is, values: [security-oncall]}]
"""


@pytest.fixture
def incident_tool() -> Iterator[FakeOncall]:
    fake = FakeOncall()
    fake.pagerduty["PDBA001"] = [PagerDutyShift("dana@example.com", START - timedelta(days=1), None)]
    fake.opsgenie["security"] = []
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def bot(db: Database, incident_tool: FakeOncall) -> Iterator[Bot]:
    def readings(holder: PolicyHolder, clock: FakeClock) -> OncallReadings:
        return OncallReadings(holder, clock, env={"PAGERDUTY_TOKEN": PD_TOKEN, "OPSGENIE_TOKEN": OG_KEY},
                              endpoints=Endpoints(incident_tool.url, incident_tool.url))

    with running_bot(db, CONFIG, oncall=readings) as running:
        yield running


def approve(bot: Bot, user: str, request_id: int) -> None:
    reply = bot.sender.block_actions(user, "approve", value=str(request_id), channel_id="D0" + user)
    assert reply.status == 200, reply.text


def refusals(bot: Bot, user: str) -> list[str]:
    return [c["text"] for c in bot.fake.calls_to("chat.postEphemeral") if c["user"] == user]


def metrics(bot: Bot) -> str:
    with urllib.request.urlopen(f"{bot.url}/metrics", timeout=5) as response:  # noqa: S310 — loopback
        return str(response.read().decode())


def errors_line(text: str, provider: str, schedule: str) -> float:
    prefix = f'accessbot_oncall_provider_errors_total{{provider="{provider}",schedule="{schedule}"}} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0][len(prefix):]) if lines else 0.0


def test_the_approver_dm_goes_to_whoever_pagerduty_has_on_call(bot: Bot) -> None:
    request_id = submit_request(bot)
    bot.outbox.send_due()
    (dm,) = dms_to(bot, "UDANA")
    assert [b["action_id"] for b in buttons(dm)] == ["approve", "deny"]
    assert dms_to(bot, "UERIN") == [] and dms_to(bot, "UFRANK") == []
    assert bot.container.service.get(request_id).state == "pending"


def test_eligibility_follows_the_hand_over_at_the_next_click(bot: Bot, incident_tool: FakeOncall) -> None:
    request_id = submit_request(bot)
    bot.outbox.send_due()
    incident_tool.pagerduty["PDBA001"] = [
        PagerDutyShift("dana@example.com", START - timedelta(days=1), START + timedelta(seconds=5)),
        PagerDutyShift("erin@example.com", START + timedelta(seconds=5), None),
    ]
    bot.clock.advance(seconds=10)  # erin took over; dana's DM still has its buttons

    approve(bot, "UDANA", request_id)
    assert bot.container.service.get(request_id).state == "pending"
    (refusal,) = refusals(bot, "UDANA")
    assert "approve" in refusal
    assert bot.noop.calls == []

    approve(bot, "UERIN", request_id)
    record = bot.container.service.get(request_id)
    assert record.state == "active" and [v.approver_id for v in record.votes] == ["UERIN"]
    assert bot.noop.calls == [("grant", record.grants[0].id)]


def test_opsgenie_on_call_may_approve_too(bot: Bot, incident_tool: FakeOncall) -> None:
    request_id = submit_request(bot)
    approve(bot, "UFRANK", request_id)
    assert bot.container.service.get(request_id).state == "pending" and refusals(bot, "UFRANK")
    incident_tool.opsgenie["security"] = ["frank@example.com"]
    bot.clock.advance(seconds=10)
    approve(bot, "UFRANK", request_id)
    assert bot.container.service.get(request_id).state == "active"


def test_an_outage_makes_nobody_an_approver_and_is_counted_on_metrics(bot: Bot, incident_tool: FakeOncall) -> None:
    request_id = submit_request(bot)
    before = errors_line(metrics(bot), "pagerduty", "dba-oncall")
    incident_tool.down = True
    bot.clock.advance(seconds=10)

    approve(bot, "UDANA", request_id)  # on call at the last answer, but that answer is not trusted to approve
    assert bot.container.service.get(request_id).state == "pending"
    assert refusals(bot, "UDANA")
    assert errors_line(metrics(bot), "pagerduty", "dba-oncall") >= before + 1

    incident_tool.down = False
    bot.clock.advance(seconds=10)
    approve(bot, "UDANA", request_id)
    assert bot.container.service.get(request_id).state == "active"


def test_access_granted_stays_through_an_outage(bot: Bot, incident_tool: FakeOncall) -> None:
    request_id = submit_request(bot)
    approve(bot, "UDANA", request_id)
    assert bot.container.service.get(request_id).state == "active"
    incident_tool.down = True
    bot.clock.advance(minutes=30)
    bot.container.worker.run_due(now=bot.clock.now())
    record = bot.container.service.get(request_id)
    assert record.state == "active" and [g.state for g in record.grants] == ["active"]
    assert [c[0] for c in bot.noop.calls] == ["grant"]
