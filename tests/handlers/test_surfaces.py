"""Deny, the reason modal, /access sub-commands, App Home, event de-dup, health, metrics, Slack directory."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from bot.lifecycle.requests import RequestInput
from policy.validation import load_config_text
from store.db import Database
from tests.bot.fixtures import CONFIG
from tests.handlers.conftest import Bot, running_bot
from tests.handlers.test_e2e import buttons, dms_to, submit_request
from tests.support.fake_slack import FakeSlack


def response_texts(bot: Bot) -> list[str]:
    return [str(c.get("text")) for c in bot.fake.calls_to("response_url")]


def test_deny_updates_every_approver_dm_and_tells_the_requester(bot: Bot) -> None:
    request_id = submit_request(bot)
    bot.outbox.send_due()
    reply = bot.sender.block_actions("UERIN", "deny", value=str(request_id), channel_id="DUERIN")
    assert reply.status == 200
    assert bot.container.service.get(request_id).state == "denied"
    bot.outbox.send_due()
    updates = bot.fake.calls_to("chat.update")
    assert len(updates) == 2 and all("Denied" in u["text"] and not buttons(u) for u in updates)
    assert any("Denied" in c["text"] for c in dms_to(bot, "UALICE"))
    assert bot.noop.calls == []


@pytest.fixture
def reason_bot(db: Database) -> Iterator[Bot]:
    config = CONFIG.replace(
        "      pending_timeout: 2h\n",
        "      pending_timeout: 2h\n    settings: {require_approver_reason: true}\n",
        1,
    )
    assert config != CONFIG
    with running_bot(db, config) as running:
        yield running


def test_required_reason_opens_the_reason_modal(reason_bot: Bot) -> None:
    bot = reason_bot
    request_id = submit_request(bot)
    bot.sender.block_actions("UDANA", "approve", value=str(request_id), channel_id="DUDANA")
    modal = bot.valid_view(bot.fake.last_view("decision_reason"))
    assert bot.container.service.get(request_id).state == "pending"
    too_long = bot.sender.view_submission(
        "UDANA", modal, {"reason": {"reason": {"type": "plain_text_input", "value": "x" * 200}}}
    )
    assert too_long.json()["response_action"] == "errors" and "reason" in too_long.json()["errors"]
    reply = bot.sender.view_submission(
        "UDANA", modal, {"reason": {"reason": {"type": "plain_text_input", "value": "INC-1 is real"}}}
    )
    assert reply.status == 200 and not reply.body.strip(b"{} ")
    record = bot.container.service.get(request_id)
    assert record.state == "active" and record.decision_reason == "INC-1 is real"


def test_access_subcommands_answer_ephemerally(bot: Bot) -> None:
    bot.sender.command("UALICE", "help")
    bot.sender.command("UALICE", "what is this")
    assert all("/access list" in t for t in response_texts(bot))
    assert "I don't know `/access what`" in response_texts(bot)[1]
    request_id = submit_request(bot)
    bot.fake.clear()
    bot.sender.command("UALICE", "list")
    bot.sender.command("UALICE", "flows")
    bot.sender.command("UBOB", f"cancel {request_id}")
    bot.sender.command("UALICE", "cancel nope")
    bot.sender.command("UALICE", f"cancel {request_id}")
    listed, flows, refused, bad, canceled = response_texts(bot)
    assert f"#{request_id}" in listed and "read-any" in flows
    assert "Only the requester" in refused and "request number" in bad and "canceled" in canceled
    assert all(c.get("response_type") == "ephemeral" for c in bot.fake.calls_to("response_url"))
    assert bot.container.service.get(request_id).state == "canceled"


def test_extend_and_revoke_from_the_command(bot: Bot) -> None:
    request_id = submit_request(bot)
    bot.sender.block_actions("UDANA", "approve", value=str(request_id), channel_id="DUDANA")
    bot.fake.clear()
    bot.sender.command("UALICE", f"extend {request_id} 1")
    bot.sender.command("UALICE", f"revoke {request_id}")
    extended, revoked = response_texts(bot)
    assert "extended" in extended and "Revoking" in revoked
    assert [op for op, _ in bot.noop.calls] == ["grant", "extend", "revoke"]
    assert bot.container.service.get(request_id).state == "revoked"


def test_app_home_is_published_once_per_event(bot: Bot) -> None:
    event = {"type": "app_home_opened", "user": "UALICE", "channel": "DUALICE", "tab": "home"}
    assert bot.sender.event(event, event_id="Ev1").status == 200
    assert bot.sender.event(event, event_id="Ev1", retry_num=1).status == 200
    assert len(bot.fake.calls_to("views.publish")) == 1
    home = bot.valid_view(bot.fake.home_view("UALICE") or {})
    assert home["blocks"][0]["elements"][0]["action_id"] == "new_request"


def test_new_request_button_opens_the_modal(bot: Bot) -> None:
    bot.sender.block_actions("UALICE", "new_request", view={"type": "home", "blocks": []})
    assert bot.fake.last_view("access_request")


def test_health_and_metrics(bot: Bot) -> None:
    with urllib.request.urlopen(bot.url + "/healthz") as reply:
        assert reply.status == 200 and json.loads(reply.read())["status"] == "ok"
    with urllib.request.urlopen(bot.url + "/metrics") as reply:
        assert b"accessbot_http_requests" in reply.read()


def test_deactivated_slack_users_are_never_asked(db: Database) -> None:
    fake = FakeSlack()
    fake.add_user("UERIN", "erin@example.com", deleted=True)
    with running_bot(db, fake=fake) as bot:
        submit_request(bot)
        bot.outbox.send_due()
        assert dms_to(bot, "UDANA") and not dms_to(bot, "UERIN")


def test_slack_user_group_members_can_approve(db: Database) -> None:
    fake = FakeSlack()
    fake.add_user("UZED", "zed@example.com")
    fake.add_usergroup("S1", "dba", ["UZED"])
    config = CONFIG.replace("directory:\n", "directory:\n  slack_usergroups: true\n", 1)
    with running_bot(db, config, fake=fake) as bot:
        request_id = submit_request(bot)
        bot.outbox.send_due()
        assert dms_to(bot, "UZED")
        bot.sender.block_actions("UZED", "approve", value=str(request_id), channel_id="DUZED")
        assert bot.container.service.get(request_id).state == "active"


def test_approve_from_app_home_refreshes_it(bot: Bot) -> None:
    request_id = submit_request(bot)
    bot.sender.event({"type": "app_home_opened", "user": "UDANA", "channel": "DUDANA", "tab": "home"})
    home = bot.fake.home_view("UDANA") or {}
    assert ("approve", str(request_id)) in [
        (e["action_id"], e.get("value"))
        for b in home["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    bot.sender.block_actions("UDANA", "approve", value=str(request_id), view=home)
    assert bot.container.service.get(request_id).state == "active"
    refreshed = bot.fake.home_view("UDANA") or {}
    assert "approve" not in str(refreshed["blocks"]).replace("approve_", "")


def test_directory_events_drop_stale_lookups_at_once(db: Database) -> None:
    fake = FakeSlack()
    fake.add_user("UZED", "zed@example.com")
    fake.add_usergroup("S1", "dba", [])
    config = CONFIG.replace("directory:\n", "directory:\n  slack_usergroups: true\n", 1)
    with running_bot(db, config, fake=fake) as bot:
        first = submit_request(bot)
        bot.outbox.send_due()
        assert dms_to(bot, "UDANA") and not dms_to(bot, "UZED")

        # Dana is deactivated and Zed joins the dba user group: Slack tells the bot, which believes it at once
        fake.add_user("UDANA", "dana@example.com", deleted=True)
        fake.add_usergroup("S1", "dba", ["UZED"])
        for event in (
            {"type": "user_change", "user": fake.users["UDANA"]},
            {"type": "subteam_members_changed", "subteam_id": "S1", "added_users": ["UZED"],
             "added_users_count": "1", "removed_users": [], "removed_users_count": "0"},
            {"type": "subteam_updated", "subteam": fake.usergroups["S1"]},
        ):
            assert bot.sender.event(event).status == 200  # every subscribed event is answered

        bot.container.service.cancel(first, bot.container.directory.identity("UALICE", bot.clock.now()))
        before = len(dms_to(bot, "UDANA"))
        alice = bot.container.directory.identity("UALICE", bot.clock.now())
        bot.container.service.submit(RequestInput(alice, ["db/database/billing"], "read_only",
                                                  duration_hours="1", justification="INC-2"))
        bot.outbox.send_due()
        assert dms_to(bot, "UZED"), "the new group member is asked without waiting for the cache to expire"
        assert len(dms_to(bot, "UDANA")) == before, "the deactivated approver is not asked again"


AUTOMATIC = CONFIG.replace("directory:\n", "directory:\n  slack_usergroups: true\n", 1) + """\
  - name: responders-read
    type: automatic
    requestors: {conditions: [{attribute: group, op: is, values: [responders]}]}
    targets: [{integration: db, permissions: [read_only], resources: {names: [search]}}]
"""


def test_joining_and_leaving_a_user_group_grants_and_revokes_at_the_next_tick(db: Database) -> None:
    fake = FakeSlack()
    fake.add_user("UZED", "zed@example.com")
    fake.add_usergroup("S9", "responders", [])
    with running_bot(db, AUTOMATIC, fake=fake) as bot:
        worker = bot.container.worker
        worker.reconciler.ensure_scheduled()
        worker.run_due(now=bot.clock.now())  # the first pass: nobody in the group
        assert bot.noop.calls == []

        def changed(users: list[str]) -> None:
            fake.add_usergroup("S9", "responders", users)
            event = {"type": "subteam_members_changed", "subteam_id": "S9", "team_id": "T0TEST"}
            assert bot.sender.event(event).status == 200

        changed(["UZED"])
        worker.run_due(now=bot.clock.now())  # same instant: only the event can have brought the pass forward
        ((op, grant_id),) = bot.noop.calls
        assert op == "grant"
        grant = next(g for r in bot.container.service.list(user_id="UZED") for g in r.grants)
        assert (grant.id, grant.grantee_id, grant.state, grant.expires_at) == (grant_id, "UZED", "active", None)

        changed([])
        worker.run_due(now=bot.clock.now())
        assert bot.noop.calls[1:] == [("revoke", grant_id)]


def test_an_unexpected_failure_is_told_to_the_user(bot: Bot) -> None:
    bot.fake.fail_next("views.open", error="internal_error", status=500, retry_after=None)
    bot.sender.command("UALICE", "", channel_id="C0GENERAL")
    (told,) = bot.fake.calls_to("response_url")
    assert told["response_type"] == "ephemeral" and "Something went wrong" in told["text"]
    assert not bot.fake.calls_to("views.update")  # nothing half-done followed the failure


def test_app_home_lists_a_request_whose_flow_was_renamed_since(bot: Bot) -> None:
    request_id = submit_request(bot)
    bot.container.policy.replace(load_config_text(CONFIG.replace("name: read-any", "name: read-any-v2")))
    bot.sender.event({"type": "app_home_opened", "user": "UDANA", "channel": "DUDANA", "tab": "home"})
    home = bot.fake.home_view("UDANA") or {}
    approve = [e for b in home.get("blocks", []) if b["type"] == "actions" for e in b["elements"]
               if e["action_id"] == "approve"]
    assert [e["value"] for e in approve] == [str(request_id)]  # judged by the flow it was made under
