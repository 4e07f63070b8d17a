"""End to end over HTTP: signed Slack payloads -> Bolt app -> service -> outbox -> the fake Slack."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import pytest

from policy.picker import resource_option_id
from store import outbox as outbox_store
from tests.handlers.conftest import Bot
from tests.support.slack_sender import input_values, select_value, text_value

BILLING = "db/database/billing"
SEARCH = "db/database/search"


def multi_value(*values: str) -> dict[str, Any]:
    """The resource picker's state value: a ``multi_external_select`` with these option values."""
    return {"type": "multi_external_select", "selected_options": [
        {"text": {"type": "plain_text", "text": v, "emoji": True}, "value": v} for v in values]}


def option_values(reply: Any) -> list[str]:
    """Every option value of an options load's answer (``option_groups``)."""
    return [o["value"] for g in reply.json()["option_groups"] for o in g["options"]]


def open_modal(bot: Bot, user: str = "UALICE") -> dict[str, Any]:
    reply = bot.sender.command(user, "")
    assert reply.status == 200, reply.text
    assert bot.fake.calls_to("views.open")[-1]["view"]["callback_id"] == "access_request"
    return bot.valid_view(bot.fake.last_view("access_request"))


def choose_resource(
    bot: Bot, view: dict[str, Any], key: str = BILLING, user: str = "UALICE", *more: str
) -> dict[str, Any]:
    """Pick resources in the modal's picker (by their option ids, as Slack sends them back)."""
    chosen = multi_value(*(resource_option_id(k) if "/" in k else k for k in (key, *more)))
    reply = bot.sender.block_actions(
        user, "resource", view=view, action_type="multi_external_select",
        action={"selected_options": chosen["selected_options"]},
    )
    assert reply.status == 200, reply.text
    return bot.valid_view(bot.fake.last_view("access_request"))


def values(
    duration: str | None, justification: str | None = "INC-1 debugging", permission: str = "read_only",
    resources: tuple[str, ...] = (BILLING,),
) -> dict[str, Any]:
    return input_values(
        {
            "resource": multi_value(*(resource_option_id(k) if "/" in k else k for k in resources)),
            "permission": select_value(permission, permission),
            "duration_hours": text_value(duration),
            "justification": text_value(justification),
        }
    )


def requests(bot: Bot) -> list[Any]:
    return bot.container.service.list()


def dms_to(bot: Bot, user: str) -> list[dict[str, Any]]:
    return [c for c in bot.fake.calls_to("chat.postMessage") if c["channel"] == user]


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]]


def submit_request(bot: Bot) -> int:
    view = choose_resource(bot, open_modal(bot))
    reply = bot.sender.view_submission("UALICE", view, values("2"))
    assert reply.status == 200 and not reply.body.strip(b"{} "), reply.text
    (request,) = requests(bot)
    return request.id


def test_request_approve_grant_round_trip(bot: Bot) -> None:
    view = open_modal(bot)
    found = bot.sender.block_suggestion("UALICE", "resource", "bill", view=view)
    assert option_values(found) == [resource_option_id(BILLING)]
    assert [g["label"]["text"] for g in found.json()["option_groups"]] == ["db"]  # grouped by integration
    everything = option_values(bot.sender.block_suggestion("UALICE", "resource", "", view=view))
    assert set(everything) == {resource_option_id(BILLING), resource_option_id(SEARCH)}
    view = choose_resource(bot, view)
    permission = next(b for b in view["blocks"] if b["block_id"] == "permission")
    assert {o["value"] for o in permission["element"]["options"]} == {"read_only", "read_write"}
    duration = next(b for b in view["blocks"] if b["block_id"] == "duration_hours")
    assert "4" in duration["hint"]["text"]

    reply = bot.sender.view_submission("UALICE", view, values("2"))
    assert reply.status == 200 and not reply.body.strip(b"{} "), reply.text
    (request,) = requests(bot)
    assert request.state == "pending"

    assert bot.outbox.send_due() >= 3
    for approver in ("UDANA", "UERIN"):
        (dm,) = dms_to(bot, approver)
        assert [(b["action_id"], b["value"]) for b in buttons(dm)] == [
            ("approve", str(request.id)),
            ("deny", str(request.id)),
        ]
    assert dms_to(bot, "UALICE")  # told the request is waiting
    with bot.container.db.begin() as session:
        refs = {
            r.user_id: (r.channel, r.ts)
            for r in outbox_store.message_refs(request_id=request.id, purpose="approval", session=session)
        }
    assert set(refs) == {"UDANA", "UERIN"}
    channel, ts = refs["UDANA"]

    reply = bot.sender.block_actions(
        "UDANA", "approve", value=str(request.id), channel_id=channel, message_ts=ts
    )
    assert reply.status == 200, reply.text
    granted = bot.container.service.get(request.id)
    assert granted.state == "active"
    assert bot.noop.calls == [("grant", granted.grants[0].id)]

    bot.outbox.send_due()
    updates = bot.fake.calls_to("chat.update")
    assert len(updates) == 2 and all(not buttons(u) for u in updates)
    assert any("<@UDANA>" in str(u["blocks"]) for u in updates)
    alice_texts = " ".join(c["text"] for c in dms_to(bot, "UALICE"))
    assert "granted" in alice_texts or "You have" in alice_texts
    home = bot.fake.home_view("UALICE")
    assert home is not None and any(
        e["action_id"] == "revoke" for b in home["blocks"] if b["type"] == "actions" for e in b["elements"]
    )


@pytest.mark.parametrize("duration", ["0", "-1", "abc", "4.5", "nan"])
def test_bad_durations_are_field_errors(bot: Bot, duration: str) -> None:
    view = choose_resource(bot, open_modal(bot))
    reply = bot.sender.view_submission("UALICE", view, values(duration))
    body = reply.json()
    assert body["response_action"] == "errors" and set(body["errors"]) == {"duration_hours"}
    assert requests(bot) == []


def test_missing_justification_is_a_field_error(bot: Bot) -> None:
    view = choose_resource(bot, open_modal(bot))
    reply = bot.sender.view_submission(
        "UALICE", view, values("1", justification=None, permission="read_write")
    )
    assert reply.json() == {
        "response_action": "errors",
        "errors": {"justification": "Say why you need this access."},
    }
    assert requests(bot) == []


@pytest.mark.parametrize("forge", ["unsigned", "wrong", "stale"])
def test_forged_requests_are_refused(bot: Bot, forge: str) -> None:
    request_id = submit_request(bot)
    bot.fake.clear()
    body = urlencode(
        {
            "command": "/access",
            "text": f"cancel {request_id}",
            "user_id": "UALICE",
            "trigger_id": bot.sender.new_trigger_id(),
            "team_id": "T0TEST",
            "response_url": bot.fake.hooks_url + "commands/x",
        }
    ).encode()
    form = "application/x-www-form-urlencoded"
    if forge == "unsigned":
        reply = bot.sender.raw(body, form, sign=False)
    elif forge == "wrong":
        reply = bot.sender.raw(body, form, signature="v0=" + "0" * 64)
    else:
        reply = bot.sender.raw(body, form, timestamp=int(time.time()) - 3600)
    assert reply.status == 401
    assert bot.fake.calls == []
    assert bot.container.service.get(request_id).state == "pending"
    legit = bot.sender.raw(body, form)  # the same body, signed now, goes through
    assert legit.status == 200 and bot.container.service.get(request_id).state == "canceled"


@pytest.mark.parametrize("clicker", ["UBOB", "UALICE"])
def test_ineligible_clicks_get_an_ephemeral_refusal(bot: Bot, clicker: str) -> None:
    request_id = submit_request(bot)
    reply = bot.sender.block_actions(clicker, "approve", value=str(request_id), channel_id="D0" + clicker)
    assert reply.status == 200
    (ephemeral,) = bot.fake.calls_to("chat.postEphemeral")
    assert ephemeral["user"] == clicker and "approve" in ephemeral["text"]
    record = bot.container.service.get(request_id)
    assert record.state == "pending" and record.votes == ()
    assert bot.noop.calls == []


def test_rate_limited_dm_is_retried_and_delivered_once(bot: Bot) -> None:
    submit_request(bot)
    bot.fake.fail_next("chat.postMessage", retry_after=30)
    bot.outbox.send_due()
    assert bot.outbox.send_due() == 0  # not due again before Retry-After
    bot.clock.advance(seconds=31)
    bot.outbox.send_due()
    assert bot.outbox.send_due() == 0
    delivered = [c for c in bot.fake.calls if c.method == "chat.postMessage" and not c.failed]
    assert sorted(c.args["channel"] for c in delivered) == ["UALICE", "UDANA", "UERIN"]
    with bot.container.db.begin() as session:
        assert all(m.sent_at is not None for m in outbox_store.outbox_messages(session=session))


def test_all_of_needs_one_approval_per_group(bot: Bot) -> None:
    view = choose_resource(bot, open_modal(bot))
    reply = bot.sender.view_submission("UALICE", view, values("1", permission="read_write"))
    assert reply.status == 200 and not reply.body.strip(b"{} "), reply.text
    (request,) = requests(bot)
    assert request.flow_name == "write-prod" and request.state == "pending"
    bot.outbox.send_due()
    with bot.container.db.begin() as session:
        refs = {
            r.user_id: (r.channel, r.ts)
            for r in outbox_store.message_refs(request_id=request.id, purpose="approval", session=session)
        }
    assert set(refs) == {"UDANA", "UERIN", "UFRANK"}  # dba: Dana, Erin; security: Erin, Frank

    channel, ts = refs["UDANA"]
    bot.sender.block_actions("UDANA", "approve", value=str(request.id), channel_id=channel, message_ts=ts)
    assert bot.container.service.get(request.id).state == "pending"
    (told,) = bot.fake.calls_to("chat.postEphemeral")
    assert told["user"] == "UDANA" and "waiting for group 2" in told["text"]
    assert bot.noop.calls == []
    bot.outbox.send_due()
    updates = bot.fake.calls_to("chat.update")
    assert len(updates) == 3
    for update in updates:
        assert [b["action_id"] for b in buttons(update)] == ["approve", "deny"]
        assert "Approved so far by <@UDANA>" in str(update["blocks"])
    assert "still waiting for group 2" in dms_to(bot, "UALICE")[-1]["text"]

    channel, ts = refs["UFRANK"]
    bot.sender.block_actions("UFRANK", "approve", value=str(request.id), channel_id=channel, message_ts=ts)
    granted = bot.container.service.get(request.id)
    assert granted.state == "active" and {v.approver_id for v in granted.votes} == {"UDANA", "UFRANK"}
    assert bot.noop.calls == [("grant", granted.grants[0].id)]
    bot.fake.clear()
    bot.outbox.send_due()
    assert all(not buttons(u) for u in bot.fake.calls_to("chat.update"))
