"""Requests for others under an MFA flow: the grantee confirms with their own code before the grant.

Everything goes over HTTP with signed payloads: the on-call responder's request modal, the approver's click,
the grantee's DM button, the code modal; the outbox delivers the DMs to the fake Slack.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pyotp
import pytest

from integrations.base import GrantResult, GrantSpec
from integrations.noop import NoopConnector
from store import audit as audit_log
from store import outbox as outbox_store
from store.db import Database
from tests.handlers.conftest import Bot, running_bot
from tests.handlers.test_e2e import buttons, dms_to, open_modal, requests
from tests.handlers.test_mfa import enroll
from tests.support.slack_sender import (
    external_select_value,
    input_values,
    multi_users_value,
    select_value,
    text_value,
)

BILLING = "db/database/billing"
INCIDENT_CONFIG = """
admins: [secops@example.com]
directory:
  users:
    - {email: alice@example.com, slack_id: UALICE, groups: [sre]}
    - {email: bob@example.com, slack_id: UBOB, groups: [sre]}
    - {email: dana@example.com, slack_id: UDANA, groups: [dba]}
    - {email: erin@example.com, slack_id: UERIN, groups: [dba, security]}
    - {email: frank@example.com, slack_id: UFRANK, groups: [security]}
    - {email: carol@example.com, slack_id: UCAROL, groups: [managers]}
  oncall:
    - schedule: sre-primary
      timezone: UTC
      rotation: {every: 7d, starts: "2026-11-16T09:00", members: [bob@example.com, alice@example.com]}
integrations:
  - name: db
    type: noop
    resources:
      - {type: database, name: billing, tags: {env: prod}}
      - {type: database, name: search, tags: {env: staging}}
    permissions: {read_only: {roles: [ro]}, read_write: {roles: [rw], risk_level: high}}
flows:
  - name: incident-for-others
    requestors: {conditions: [{attribute: oncall, op: is, values: [sre-primary]}]}
    request_for: [themselves, others]
    grantees: {conditions: [{attribute: group, op: is, values: [dba, sre]}]}
    targets: [{integration: db, permissions: [read_write], resources: {names: [billing]}}]
    grant_for: 2h
    approval:
      type: approvers
      groups: [{conditions: [{attribute: group, op: is, values: [security]}]}]
      pending_timeout: 1h
    settings: {require_mfa: true, require_justification: true}
"""


class GranteeRecorder:
    """The no-op connector, also recording for whom each grant was made."""

    def __init__(self, inner: NoopConnector) -> None:
        self.inner = inner
        self.granted_to: list[str | None] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def grant(self, grant: GrantSpec) -> GrantResult:
        self.granted_to.append(grant.grantee_slack_id)
        return self.inner.grant(grant)


@pytest.fixture
def incident_bot(db: Database) -> Iterator[Bot]:
    with running_bot(db, INCIDENT_CONFIG) as running:
        yield running


def request_values(code: str | None, grantees: list[str]) -> dict[str, Any]:
    return input_values(
        {
            "resource": external_select_value(BILLING, "billing"),
            "permission": select_value("read_write", "read_write"),
            "grantees": multi_users_value(grantees),
            "duration_hours": text_value("1"),
            "justification": text_value("INC-7: the billing replica is down"),
            "mfa_code": text_value(code),
        }
    )


def incident_modal(bot: Bot, user: str = "UALICE") -> dict[str, Any]:
    view = open_modal(bot, user)
    bot.sender.block_actions(
        user,
        "resource",
        view=view,
        action_type="external_select",
        action={"selected_option": {"text": {"type": "plain_text", "text": BILLING}, "value": BILLING}},
    )
    view = bot.valid_view(bot.fake.last_view("access_request"))
    assert {"grantees", "mfa_code"} <= {b["block_id"] for b in view["blocks"]}
    return view


def approve_as(bot: Bot, approver: str, request_id: int) -> None:
    with bot.container.db.begin() as session:
        found = outbox_store.message_refs(request_id=request_id, purpose="approval", session=session)
        refs = {r.user_id: (r.channel, r.ts) for r in found}
    channel, ts = refs[approver]
    reply = bot.sender.block_actions(
        approver, "approve", value=str(request_id), channel_id=channel, message_ts=ts
    )
    assert reply.status == 200, reply.text


def confirm_dm(bot: Bot, grantee: str, request_id: int) -> tuple[str, str]:
    """The (channel, ts) of the grantee's DM carrying the Confirm with MFA button."""
    for (channel, ts), message in bot.fake.messages.items():
        if channel == f"D{grantee}" and any(
            b["action_id"] == "confirm_mfa" and b["value"] == str(request_id) for b in buttons(message)
        ):
            return channel, ts
    raise AssertionError(f"no confirmation DM to {grantee}: {dms_to(bot, grantee)}")


def code_form(code: str) -> dict[str, Any]:
    return input_values({"mfa_code": text_value(code)})


def test_oncall_responder_requests_for_a_teammate_who_confirms_with_mfa(incident_bot: Bot) -> None:
    bot = incident_bot
    recorder = GranteeRecorder(bot.noop)
    bot.container.connectors["db"] = recorder  # the grant runner reads this same mapping
    alice = enroll(bot, "UALICE")  # on shift on sre-primary this week (the rotation's second member)
    assert bot.container.directory.identity("UALICE", bot.clock.now()).oncall == {"sre-primary"}

    view = incident_modal(bot)
    reply = bot.sender.view_submission("UALICE", view, request_values(alice.at(bot.clock.now()), ["UDANA"]))
    assert reply.status == 200 and not reply.body.strip(b"{} "), reply.text
    (request,) = requests(bot)
    assert request.state == "pending" and request.grantee_ids == ("UDANA",)

    bot.outbox.send_due()
    assert "requested access for you" in " ".join(c["text"] for c in dms_to(bot, "UDANA"))
    approve_as(bot, "UFRANK", request.id)
    waiting = bot.container.service.get(request.id)
    assert waiting.state == "granting" and [g.state for g in waiting.grants] == ["awaiting_mfa"]
    assert bot.noop.calls == []  # nothing is granted before the teammate confirms

    bot.outbox.send_due()
    assert "once they confirm" in " ".join(c["text"] for c in dms_to(bot, "UALICE"))
    channel, ts = confirm_dm(bot, "UDANA", request.id)
    dana = enroll(bot, "UDANA")
    bot.fake.clear()
    reply = bot.sender.block_actions("UDANA", "confirm_mfa", value=str(request.id), channel_id=channel,
                                     message_ts=ts)
    assert reply.status == 200, reply.text
    (opened,) = bot.fake.calls_to("views.open")
    assert opened["view"]["callback_id"] == "grantee_mfa"
    modal = bot.valid_view(bot.fake.last_view("grantee_mfa"))
    assert [b.get("block_id") for b in modal["blocks"] if b["type"] == "input"] == ["mfa_code"]

    wrong = bot.sender.view_submission("UDANA", modal, code_form("000000")).json()
    assert wrong["response_action"] == "errors" and set(wrong["errors"]) == {"mfa_code"}
    assert bot.noop.calls == []
    reply = bot.sender.view_submission("UDANA", modal, code_form(dana.at(bot.clock.now())))
    assert reply.status == 200 and not reply.body.strip(b"{} "), reply.text

    granted = bot.container.service.get(request.id)
    (grant,) = granted.grants
    assert granted.state == "active" and grant.state == "active" and grant.grantee_id == "UDANA"
    assert bot.noop.calls == [("grant", grant.id)] and recorder.granted_to == ["UDANA"]
    (update,) = [u for u in bot.fake.calls_to("chat.update") if u["channel"] == channel]
    assert not buttons(update) and "confirmed" in update["text"]
    bot.outbox.send_due()
    assert any("You have" in c["text"] for c in dms_to(bot, "UDANA"))
    with bot.container.db.begin() as session:
        events = [e.event for e in audit_log.audit_events(request_id=request.id, session=session)]
    order = [events.index(e) for e in ("awaiting_grantee_mfa", "grantee_mfa_confirmed", "granted")]
    assert order == sorted(order)


def submit_for(bot: Bot, grantees: list[str], code: str | None) -> dict[str, Any]:
    """Submit the incident modal as Alice; the response body ({} when accepted)."""
    reply = bot.sender.view_submission("UALICE", incident_modal(bot), request_values(code, grantees))
    assert reply.status == 200, reply.text
    return reply.json() if reply.body.strip() else {}


def awaiting_confirmation(bot: Bot) -> tuple[int, pyotp.TOTP]:
    """Alice asked for Dana; Frank approved; Dana's grant waits for her code (DMs delivered)."""
    alice = enroll(bot, "UALICE")
    assert submit_for(bot, ["UDANA"], alice.at(bot.clock.now())) == {}
    (request,) = requests(bot)
    bot.outbox.send_due()
    approve_as(bot, "UFRANK", request.id)
    bot.outbox.send_due()
    return request.id, alice


@pytest.mark.parametrize(
    ("description", "grantees", "code", "field"),
    [
        ("a grantee outside the flow's grantee conditions", ["UCAROL"], "valid", "grantees"),
        ("a wrong MFA code", ["UDANA"], "000000", "mfa_code"),
        ("a replayed MFA code", ["UDANA"], "replayed", "mfa_code"),
        ("no MFA code", ["UDANA"], None, "mfa_code"),
    ],
)
def test_request_modal_field_errors(
    incident_bot: Bot, description: str, grantees: list[str], code: str | None, field: str
) -> None:
    bot = incident_bot
    alice = enroll(bot, "UALICE")
    valid = alice.at(bot.clock.now())
    if code == "replayed":
        assert submit_for(bot, ["UBOB"], valid) == {}  # the code is spent on a first request
    typed = valid if code in ("valid", "replayed") else code
    before = len(requests(bot))
    body = submit_for(bot, grantees, typed)
    assert body.get("response_action") == "errors" and set(body["errors"]) == {field}, description
    assert len(requests(bot)) == before
    if field == "grantees":
        assert "Carol" in body["errors"]["grantees"] or "carol" in body["errors"]["grantees"]
        assert submit_for(bot, ["UDANA"], valid) == {}  # a refused grantee never spends the code


def test_a_confirmation_that_never_comes_ends_the_grant_at_the_deadline(incident_bot: Bot) -> None:
    bot = incident_bot
    request_id, _ = awaiting_confirmation(bot)
    channel, ts = confirm_dm(bot, "UDANA", request_id)
    bot.clock.advance(timedelta(minutes=59))
    bot.container.worker.run_due()
    assert bot.container.service.get(request_id).grants[0].state == "awaiting_mfa"
    bot.clock.advance(timedelta(minutes=2))
    bot.container.worker.run_due()
    record = bot.container.service.get(request_id)
    assert record.state == "timed_out" and [g.state for g in record.grants] == ["timed_out"]
    assert bot.noop.calls == []
    bot.outbox.send_due()
    for user in ("UDANA", "UALICE"):
        assert "did not confirm with MFA in time" in dms_to(bot, user)[-1]["text"]
    with bot.container.db.begin() as session:
        assert "grantee_mfa_timed_out" in [e.event for e in audit_log.audit_events(request_id=request_id,
            session=session)]
    enroll(bot, "UDANA")
    bot.fake.clear()
    bot.sender.block_actions("UDANA", "confirm_mfa", value=str(request_id), channel_id=channel, message_ts=ts)
    (refusal,) = bot.fake.calls_to("chat.postEphemeral")
    assert "not waiting" in refusal["text"] and bot.fake.calls_to("views.open") == []


def test_a_grantee_not_enrolled_is_told_how_to_enrol(incident_bot: Bot) -> None:
    bot = incident_bot
    request_id, _ = awaiting_confirmation(bot)
    channel, ts = confirm_dm(bot, "UDANA", request_id)
    bot.fake.clear()
    bot.sender.block_actions("UDANA", "confirm_mfa", value=str(request_id), channel_id=channel, message_ts=ts)
    (told,) = bot.fake.calls_to("chat.postEphemeral")
    assert told["user"] == "UDANA" and "/access mfa" in told["text"]
    assert bot.fake.calls_to("views.open") == []


def test_only_the_grantee_can_confirm(incident_bot: Bot) -> None:
    bot = incident_bot
    request_id, _ = awaiting_confirmation(bot)
    enroll(bot, "UERIN")
    bot.fake.clear()
    bot.sender.block_actions("UERIN", "confirm_mfa", value=str(request_id), channel_id="DUERIN")
    (refusal,) = bot.fake.calls_to("chat.postEphemeral")
    assert "does not grant you" in refusal["text"] and bot.fake.calls_to("views.open") == []
    modal = bot.valid_view(bot.fake.last_view("access_request"))  # any view: the submission is re-checked
    forged = dict(modal, callback_id="grantee_mfa", private_metadata=f'{{"request_id": {request_id}}}')
    reply = bot.sender.view_submission("UERIN", forged, code_form("123456")).json()
    assert set(reply["errors"]) == {"mfa_code"} and bot.noop.calls == []


def test_revoking_before_the_confirmation_ends_the_waiting_grant(incident_bot: Bot) -> None:
    bot = incident_bot
    request_id, _ = awaiting_confirmation(bot)
    bot.sender.command("UALICE", f"revoke {request_id}")
    record = bot.container.service.get(request_id)
    assert record.state == "revoked" and [g.state for g in record.grants] == ["revoked"]
    assert bot.noop.calls == []  # nothing was granted, so nothing to revoke at the connector


def test_automatic_flow_grants_the_requester_at_once_and_waits_for_the_teammate(db: Database) -> None:
    approvers = "      groups: [{conditions: [{attribute: group, op: is, values: [security]}]}]\n"
    automatic = INCIDENT_CONFIG.replace("      type: approvers\n" + approvers, "      type: automatic\n")
    assert automatic != INCIDENT_CONFIG
    with running_bot(db, automatic) as bot:
        alice = enroll(bot, "UALICE")
        assert submit_for(bot, ["UALICE", "UDANA"], alice.at(bot.clock.now())) == {}
        (request,) = requests(bot)
        states = {g.grantee_id: g.state for g in request.grants}
        assert request.state == "active" and states == {"UALICE": "active", "UDANA": "awaiting_mfa"}
        assert [g for g in request.grants if g.grantee_id == "UALICE"][0].id == bot.noop.calls[0][1]
        bot.outbox.send_due()
        (to_dana,) = dms_to(bot, "UDANA")  # one DM: who asked for what and why, and the button
        assert [b["action_id"] for b in buttons(to_dana)] == ["confirm_mfa"]
        channel, ts = confirm_dm(bot, "UDANA", request.id)
        dana = enroll(bot, "UDANA")
        bot.sender.block_actions("UDANA", "confirm_mfa", value=str(request.id), channel_id=channel,
                                 message_ts=ts)
        modal = bot.valid_view(bot.fake.last_view("grantee_mfa"))
        code = dana.at(bot.clock.now())
        assert bot.sender.view_submission("UDANA", modal, code_form(code)).status == 200
        again = bot.sender.view_submission("UDANA", modal, code_form(code)).json()  # a double submit
        assert set(again["errors"]) == {"mfa_code"}
        record = bot.container.service.get(request.id)
        assert {g.grantee_id: g.state for g in record.grants} == {"UALICE": "active", "UDANA": "active"}
        assert len(bot.noop.calls) == 2
