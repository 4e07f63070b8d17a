"""The access flows end to end over signed HTTP (issue 15): several resources and bundles in one request,
approval in a team channel with its thread, break-glass with its review, and the rough edges a user meets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from policy.picker import bundle_option_id, resource_option_id
from store import audit as audit_log
from store import outbox as outbox_store
from store.db import Database
from tests.handlers.conftest import Bot, running_bot
from tests.handlers.test_e2e import buttons, dms_to, multi_value, open_modal, option_values
from tests.support.slack_sender import input_values, select_value, text_value

LONG = "analytics_" + "x" * 190  # a 200-character resource name
SHARDS = [f"shard-{i:03d}" for i in range(100)]
DIRECTORY = "\n".join(
    f"    - {{email: {email}, slack_id: {uid}, groups: [{group}]}}"
    for uid, email, group in [
        ("UALICE", "alice@example.com", "sre"), ("UBOB", "bob@example.com", "support"),
        ("UDANA", "dana@example.com", "dba"), ("UERIN", "erin@example.com", "dba"),
        ("UCTO", "cto@example.com", "exec"), ("USECOPS", "secops@example.com", "secops"),
    ]
)
FLOWS = f"""
admins: [secops@example.com]
audit_channel: C0AUDIT
directory:
  users:
{DIRECTORY}
integrations:
  - name: db
    type: noop
    resources:
      - {{type: database, name: billing}}
      - {{type: database, name: ledger}}
      - {{type: database, name: search}}
      - {{type: database, name: {LONG}}}
{chr(10).join(f"      - {{type: shard, name: {s}}}" for s in SHARDS)}
    permissions: {{read_only: {{roles: [ro]}}, read_write: {{roles: [rw], risk_level: high}}}}
bundles:
  - name: billing-debug
    targets:
      - {{integration: db, resource_type: database, permissions: [read_only], resources: {{names: [billing, ledger]}}}}
flows:
  - name: read-any
    labels: [prod, db]
    requestors: {{conditions: [{{attribute: group, op: is, values: [sre]}}]}}
    targets: [{{integration: db, permissions: [read_only], resources: {{any: true}}}}, {{bundle: billing-debug}}]
    grant_for: 4h
    require_duration: true
    approval:
      type: approvers
      channel: C0DBA
      notify: both
      groups: [{{conditions: [{{attribute: group, op: is, values: [dba]}}]}}]
      escalation: {{every: 30m, tiers: [{{conditions: [{{attribute: user, op: is, values: [cto@example.com]}}]}}]}}
  - name: break-glass
    requestors: {{conditions: [{{attribute: group, op: is, values: [sre]}}]}}
    targets: [{{integration: db, permissions: [read_write], resources: {{any: true}}}}]
    grant_for: 1h
    approval:
      type: approvers
      groups: [{{conditions: [{{attribute: group, op: is, values: [dba]}}]}}]
      escalation: {{every: 15m, tiers: [{{conditions: [{{attribute: user, op: is, values: [cto@example.com]}}]}}]}}
    settings: {{break_glass: true}}
"""
BILLING, LEDGER, SEARCH = "db/database/billing", "db/database/ledger", "db/database/search"


@pytest.fixture
def flows_bot(db: Database) -> Iterator[Bot]:
    with running_bot(db, FLOWS) as running:
        yield running


def pick(bot: Bot, view: dict[str, Any], *values: str, user: str = "UALICE") -> dict[str, Any]:
    reply = bot.sender.block_actions(user, "resource", view=view, action_type="multi_external_select",
                                     action={"selected_options": multi_value(*values)["selected_options"]})
    assert reply.status == 200, reply.text
    return bot.valid_view(bot.fake.last_view("access_request"))


def form(*values: str, permission: str = "read_only", duration: str | None = "2",
         justification: str = "INC-7 ledger drift") -> dict[str, Any]:
    fields = {"resource": multi_value(*values), "permission": select_value(permission, permission),
              "justification": text_value(justification)}
    if duration is not None:
        fields["duration_hours"] = text_value(duration)
    return input_values(fields)


def submit(bot: Bot, view: dict[str, Any], values: dict[str, Any], user: str = "UALICE") -> int:
    reply = bot.sender.view_submission(user, view, values)
    assert reply.status == 200 and not reply.body.strip(b"{} "), reply.text
    return max(r.id for r in bot.container.service.list())


def block(view: dict[str, Any], block_id: str) -> dict[str, Any] | None:
    return next((b for b in view["blocks"] if b.get("block_id") == block_id), None)


def valid_message(message: dict[str, Any]) -> None:
    for parsed in Block.parse_all(message["blocks"]):
        assert parsed is not None
        parsed.validate_json()


def channel_posts(bot: Bot, channel: str) -> list[dict[str, Any]]:
    return [c for c in bot.fake.calls_to("chat.postMessage") if c["channel"] == channel]


def events(bot: Bot, request_id: int) -> list[str]:
    with bot.container.db.begin() as session:
        return [e.event for e in audit_log.audit_events(request_id=request_id, session=session)]


def test_three_resources_two_picked_one_via_a_bundle_one_approval_three_grants_three_revokes(flows_bot: Bot) -> None:
    bot = flows_bot
    view = open_modal(bot)
    found = bot.sender.block_suggestion("UALICE", "resource", "bill", view=view).json()["option_groups"]
    assert [g["label"]["text"] for g in found] == ["db"]
    labels = {o["value"]: o["text"]["text"] for g in found for o in g["options"]}
    assert labels == {bundle_option_id("billing-debug"): "billing-debug — bundle, 2 resources",
                      resource_option_id(BILLING): "billing · database"}

    view = pick(bot, view, resource_option_id(SEARCH), resource_option_id(BILLING), bundle_option_id("billing-debug"))
    picked = block(view, "resource")
    assert picked is not None and picked["element"]["type"] == "multi_external_select"
    assert [o["value"] for o in picked["element"]["initial_options"]] == [
        resource_option_id(k) for k in (SEARCH, BILLING, LEDGER)]  # the bundle shown expanded
    permission = block(view, "permission")
    assert permission is not None  # every chosen resource offers both (read-any, break-glass)
    assert [o["value"] for o in permission["element"]["options"]] == ["read_only", "read_write"]

    request_id = submit(bot, view, form(resource_option_id(SEARCH), resource_option_id(BILLING),
                                        bundle_option_id("billing-debug")))
    record = bot.container.service.get(request_id)
    assert record.resource_keys == (SEARCH, BILLING, LEDGER) and record.state == "pending"
    bot.outbox.send_due()
    (dm,) = dms_to(bot, "UDANA")
    valid_message(dm)
    assert "`search`, `billing` and `ledger`" in str(dm["blocks"])

    bot.sender.block_actions("UDANA", "approve", value=str(request_id), channel_id="DUDANA")
    granted = bot.container.service.get(request_id)
    assert granted.state == "active" and len(granted.grants) == 3
    assert sorted(op for op, _ in bot.noop.calls) == ["grant"] * 3
    assert {g.resource_key for g in granted.grants} == {SEARCH, BILLING, LEDGER}

    bot.clock.advance(seconds=2 * 3600 + 1)
    bot.container.worker.run_due()
    ended = bot.container.service.get(request_id)
    assert {g.state for g in ended.grants} == {"expired"}
    revokes = sorted(gid for op, gid in bot.noop.calls if op == "revoke")
    assert revokes == sorted(g.id for g in granted.grants)


def test_a_200_character_resource_is_requestable_through_the_modal(flows_bot: Bot) -> None:
    bot = flows_bot
    view = open_modal(bot)
    (value,) = option_values(bot.sender.block_suggestion("UALICE", "resource", "analytics_", view=view))
    assert len(value) <= 150 and value == resource_option_id(f"db/database/{LONG}")
    view = pick(bot, view, value)
    request_id = submit(bot, view, form(value))
    assert bot.container.service.get(request_id).resource_keys == (f"db/database/{LONG}",)


def test_the_approver_dm_for_100_resources_stays_within_slacks_limits(flows_bot: Bot) -> None:
    bot = flows_bot
    ids = [resource_option_id(f"db/shard/{s}") for s in SHARDS]
    view = pick(bot, open_modal(bot), *ids)
    request_id = submit(bot, view, form(*ids))
    assert len(bot.container.service.get(request_id).resource_keys) == 100
    bot.outbox.send_due()  # the fake Slack refuses invalid Block Kit: every post went through
    for message in [*dms_to(bot, "UDANA"), *channel_posts(bot, "C0DBA")]:
        valid_message(message)
        assert len(message["blocks"]) <= 50
        assert "and 90 more" in str(message["blocks"])
    (dm,) = dms_to(bot, "UDANA")
    show = next(b["accessory"] for b in dm["blocks"] if b.get("accessory", {}).get("action_id") == "show_resources")
    bot.sender.block_actions("UDANA", "show_resources", value=show["value"], channel_id="DUDANA")
    listed = bot.valid_view(bot.fake.last_view("resource_list"))
    assert all(s in str(listed["blocks"]) for s in SHARDS)
    bot.sender.block_actions("UBOB", "show_resources", value=show["value"], channel_id="DUBOB")  # not his to see
    assert "not yours to see" in bot.fake.calls_to("chat.postEphemeral")[-1]["text"]


def test_channel_approval_refuses_others_grants_on_an_approvers_click_and_threads_the_events(flows_bot: Bot) -> None:
    bot = flows_bot
    view = pick(bot, open_modal(bot), resource_option_id(BILLING))
    request_id = submit(bot, view, form(resource_option_id(BILLING)))
    bot.outbox.send_due()
    (post,) = channel_posts(bot, "C0DBA")
    valid_message(post)
    assert [(b["action_id"], b["value"]) for b in buttons(post)] == [("approve", str(request_id)),
                                                                       ("deny", str(request_id))]
    assert dms_to(bot, "UDANA") and dms_to(bot, "UERIN")  # notify: both
    with bot.container.db.begin() as session:
        ref = next(r for r in outbox_store.message_refs(request_id=request_id, purpose="approval", session=session)
                   if r.user_id == "C0DBA")

    bot.clock.advance(minutes=31)  # nobody decided: the next tier is asked, the thread and the requester told
    bot.container.worker.run_due()
    bot.outbox.send_due()
    threaded = [c for c in channel_posts(bot, "C0DBA") if c.get("thread_ts") == ref.ts]
    assert any("Escalated to tier 1" in c["text"] and "<@UCTO>" in c["text"] for c in threaded)
    assert dms_to(bot, "UCTO")
    assert any("escalated" in c["text"] and "<@UCTO>" in c["text"] for c in dms_to(bot, "UALICE"))

    bot.sender.block_actions("UBOB", "approve", value=str(request_id), channel_id=ref.channel, message_ts=ref.ts)
    refusal = bot.fake.calls_to("chat.postEphemeral")[-1]
    assert refusal["user"] == "UBOB" and refusal["channel"] == ref.channel and "not an approver" in refusal["text"]
    assert bot.container.service.get(request_id).state == "pending" and bot.noop.calls == []

    bot.sender.block_actions("UERIN", "approve", value=str(request_id), channel_id=ref.channel, message_ts=ref.ts)
    assert bot.container.service.get(request_id).state == "active" and len(bot.noop.calls) == 1
    bot.fake.clear()
    bot.outbox.send_due()
    (update,) = [u for u in bot.fake.calls_to("chat.update") if u["channel"] == ref.channel and u["ts"] == ref.ts]
    assert buttons(update) == [] and "<@UERIN>" in str(update["blocks"]) and "Approved" in update["text"]
    assert bot.fake.messages[(ref.channel, ref.ts)]["text"] == update["text"]  # updated in place
    granted = [c for c in channel_posts(bot, "C0DBA") if c.get("thread_ts") == ref.ts]
    assert any(c["text"].startswith("✅ Granted") for c in granted)
    told = " ".join(c["text"] for c in dms_to(bot, "UALICE"))
    assert "<@UERIN> approved your request" in told

    bot.sender.block_actions("UALICE", "revoke", value=str(request_id), channel_id="DUALICE")
    bot.outbox.send_due()
    assert any(c["text"].startswith("🔒 Revoked") and c.get("thread_ts") == ref.ts
               for c in channel_posts(bot, "C0DBA"))


def test_notify_channel_asks_in_the_channel_only(db: Database) -> None:
    config = FLOWS.replace("      notify: both\n", "      notify: channel\n", 1)
    assert config != FLOWS
    with running_bot(db, config) as bot:
        view = pick(bot, open_modal(bot), resource_option_id(BILLING))
        submit(bot, view, form(resource_option_id(BILLING)))
        bot.outbox.send_due()
        assert len(channel_posts(bot, "C0DBA")) == 1
        assert dms_to(bot, "UDANA") == [] and dms_to(bot, "UERIN") == []
        assert "C0DBA" in dms_to(bot, "UALICE")[0]["text"]  # the requester is told where it was asked


def test_break_glass_grants_at_once_reviews_escalate_acknowledge_is_audited_revoke_now_ends_it(flows_bot: Bot) -> None:
    bot = flows_bot
    view = pick(bot, open_modal(bot), resource_option_id(BILLING))
    request_id = submit(bot, view, form(resource_option_id(BILLING), permission="read_write", duration=None,
                                        justification="prod down, INC-9"))
    record = bot.container.service.get(request_id)
    assert record.state == "active" and record.votes == () and bot.noop.calls == [("grant", record.grants[0].id)]
    assert record.duration == timedelta(hours=1)  # no hours asked: the flow's grant_for
    bot.outbox.send_due()
    for reviewer in ("UDANA", "UERIN"):
        (review,) = dms_to(bot, reviewer)
        valid_message(review)
        assert [b["action_id"] for b in buttons(review)] == ["acknowledge", "review_revoke"]
        assert "Break-glass" in review["text"] and "<@UALICE>" in review["text"]
    (alert,) = [c for c in channel_posts(bot, "C0AUDIT") if "BREAK-GLASS" in c["text"]]
    assert "<@UALICE>" in alert["text"] and "<@UDANA>" in alert["text"] and "UALICE'" not in alert["text"]
    assert any("break-glass" in c["text"] and "will review" in c["text"] for c in dms_to(bot, "UALICE"))

    bot.clock.advance(minutes=16)  # unreviewed: escalates like a pending request
    bot.container.worker.run_due()
    bot.outbox.send_due()
    (escalated,) = dms_to(bot, "UCTO")
    assert [b["action_id"] for b in buttons(escalated)] == ["acknowledge", "review_revoke"]

    bot.sender.block_actions("UBOB", "acknowledge", value=str(request_id), channel_id="DUBOB")
    assert "not a reviewer" in bot.fake.calls_to("chat.postEphemeral")[-1]["text"]
    bot.sender.block_actions("UCTO", "acknowledge", value=str(request_id), channel_id="DUCTO")
    reviewed = bot.container.service.get(request_id)
    assert reviewed.review_outcome == "acknowledged" and reviewed.reviewed_by == "UCTO"
    assert reviewed.state == "active" and "break_glass_acknowledged" in events(bot, request_id)
    bot.fake.clear()
    bot.outbox.send_due()
    updates = bot.fake.calls_to("chat.update")
    assert len(updates) == 3 and all(buttons(u) == [] and "Acknowledged" in u["text"] for u in updates)
    bot.sender.block_actions("UDANA", "review_revoke", value=str(request_id), channel_id="DUDANA")
    assert "already reviewed" in bot.fake.calls_to("chat.postEphemeral")[-1]["text"]
    assert bot.container.service.get(request_id).grants[0].state == "active"

    second = _break_glass_again(bot)
    bot.sender.block_actions("UERIN", "review_revoke", value=str(second), channel_id="DUERIN")
    ended = bot.container.service.get(second)
    assert ended.review_outcome == "revoked" and {g.state for g in ended.grants} == {"revoked"}
    assert [op for op, gid in bot.noop.calls if gid == ended.grants[0].id] == ["grant", "revoke"]
    assert "break_glass_revoked" in events(bot, second)


def _break_glass_again(bot: Bot) -> int:
    view = pick(bot, open_modal(bot), resource_option_id(SEARCH))
    return submit(bot, view, form(resource_option_id(SEARCH), permission="read_write", duration=None))


def test_without_require_duration_the_modal_asks_no_hours(flows_bot: Bot) -> None:
    bot = flows_bot
    view = pick(bot, open_modal(bot), resource_option_id(BILLING))
    assert block(view, "duration_hours") is not None  # read_only (read-any) asks for hours
    permission = block(view, "permission")
    assert permission is not None
    assert {o["text"]["text"] for o in permission["element"]["options"]} == {"read_only", "read_write (high risk)"}
    reply = bot.sender.block_actions("UALICE", "permission", view=view, selected_option={
        "text": {"type": "plain_text", "text": "read_write"}, "value": "read_write"},
        values=form(resource_option_id(BILLING), permission="read_write"))
    assert reply.status == 200
    redrawn = bot.valid_view(bot.fake.last_view("access_request"))
    assert block(redrawn, "duration_hours") is None  # break-glass has no require_duration


def test_request_again_prefills_only_your_own_request(flows_bot: Bot) -> None:
    bot = flows_bot
    view = pick(bot, open_modal(bot), resource_option_id(BILLING), resource_option_id(LEDGER))
    request_id = submit(bot, view, form(resource_option_id(BILLING), resource_option_id(LEDGER)))
    for clicker, expected in [("UBOB", []), ("UALICE", [resource_option_id(BILLING), resource_option_id(LEDGER)])]:
        bot.sender.block_actions(clicker, "request_again", value=str(request_id), view={"type": "home"})
        opened = bot.fake.last_view("access_request")
        picker = block(opened, "resource")
        assert picker is not None
        assert [o["value"] for o in picker["element"].get("initial_options", [])] == expected, clicker
    bot.sender.block_actions("UALICE", "request_again", value="١٢", view={"type": "home"})  # Arabic-Indic digits
    assert block(bot.fake.last_view("access_request"), "resource")["element"].get("initial_options") is None  # type: ignore[index]
