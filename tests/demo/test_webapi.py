"""The demo's Web API answers slack_sdk's WebClient like Slack: shapes, errors, in-place updates, Block Kit checks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.demo.blockkit import options_problems
from bot.demo.server import _serve
from bot.demo.web import DemoWeb
from bot.demo.workspace import Workspace, make_user

SECTION = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
MODAL = {"type": "modal", "title": {"type": "plain_text", "text": "Request access"}, "blocks": SECTION}


@pytest.fixture
def workspace() -> Workspace:
    ws = Workspace()
    ws.users["UALICE"] = make_user("UALICE", "alice@example.com", "alice")
    return ws


@pytest.fixture
def client(workspace: Workspace) -> Iterator[WebClient]:
    server, thread = _serve(DemoWeb(workspace, webhook_secret="s"), 0)
    workspace.base_url = f"http://127.0.0.1:{server.server_port}/"
    try:
        yield WebClient(token="xoxb-demo", base_url=f"{workspace.base_url}api/")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def error_of(call: object) -> str:
    assert isinstance(call, Exception)
    return str(call.response["error"]) if isinstance(call, SlackApiError) else repr(call)


def test_messages_post_to_the_dm_and_update_in_place(client: WebClient, workspace: Workspace) -> None:
    first = client.chat_postMessage(channel="UALICE", text="one", blocks=SECTION)
    client.chat_postMessage(channel="UALICE", text="two")
    assert first["channel"] == "DUALICE"
    client.chat_update(channel=first["channel"], ts=first["ts"], text="one, decided")
    assert [m["text"] for m in workspace.messages["DUALICE"]] == ["one, decided", "two"]
    assert "edited" in workspace.messages["DUALICE"][0]
    with pytest.raises(SlackApiError) as missing:
        client.chat_update(channel="DUALICE", ts="1.000000", text="x")
    assert error_of(missing.value) == "message_not_found"


def test_invalid_block_kit_is_refused_as_slack_does(client: WebClient, workspace: Workspace) -> None:
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="UALICE", blocks=[{"type": "section", "text": {"type": "mrkdwn",
                                                                                       "text": "x" * 3001}}])
    assert error_of(refused.value) == "invalid_blocks"
    assert "3000" in refused.value.response["response_metadata"]["messages"][0]
    with pytest.raises(SlackApiError) as unknown:
        client.chat_postMessage(channel="UALICE", blocks=[{"type": "sparkle"}])
    assert "invalid block type" in unknown.value.response["response_metadata"]["messages"][0]
    with pytest.raises(SlackApiError) as nowhere:
        client.chat_postMessage(channel="UNOBODY", text="x")
    assert error_of(nowhere.value) == "channel_not_found"
    assert "DUALICE" not in workspace.messages


def test_modals_need_a_fresh_trigger_and_updates_check_the_hash(client: WebClient, workspace: Workspace) -> None:
    with pytest.raises(SlackApiError) as bad:
        client.views_open(trigger_id="made.up", view=MODAL)
    assert error_of(bad.value) == "invalid_trigger_id"
    trigger = workspace.new_trigger("UALICE")
    opened = client.views_open(trigger_id=trigger, view=MODAL)["view"]
    assert workspace.modal_stacks["UALICE"] == [opened["id"]]
    with pytest.raises(SlackApiError) as reused:
        client.views_open(trigger_id=trigger, view=MODAL)
    assert error_of(reused.value) == "invalid_trigger_id"  # a trigger opens one view
    updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view=MODAL)["view"]
    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"]
    with pytest.raises(SlackApiError) as stale:
        client.views_update(view_id=opened["id"], hash=opened["hash"], view=MODAL)
    assert error_of(stale.value) == "hash_conflict"
    with pytest.raises(SlackApiError) as not_home:
        client.views_publish(user_id="UALICE", view=MODAL)
    assert error_of(not_home.value) == "invalid_arguments"
    home = client.views_publish(user_id="UALICE", view={"type": "home", "blocks": SECTION})["view"]
    assert workspace.home_views["UALICE"] == home["id"]


def test_tokens_and_methods_are_checked_and_every_call_is_logged(client: WebClient, workspace: Workspace) -> None:
    with pytest.raises(SlackApiError) as bad_token:
        WebClient(token="nope", base_url=client.base_url).auth_test()
    assert error_of(bad_token.value) == "invalid_auth"
    with pytest.raises(SlackApiError) as unknown:
        client.api_call("admin.users.remove")
    assert error_of(unknown.value) == "unknown_method"
    assert client.users_lookupByEmail(email="ALICE@example.com")["user"]["id"] == "UALICE"
    titles = [(e["title"], e["ok"]) for e in workspace.log]
    assert titles == [("auth.test", False), ("admin.users.remove", False), ("users.lookupByEmail", True)]


def test_thread_replies_join_the_root_which_counts_them(client: WebClient, workspace: Workspace) -> None:
    root = client.chat_postMessage(channel="C0APPROVALS", text="request #1", blocks=SECTION)
    first = client.chat_postMessage(channel="C0APPROVALS", text="escalated", thread_ts=root["ts"])
    second = client.chat_postMessage(channel="C0APPROVALS", text="granted", thread_ts=first["ts"])  # a reply's ts
    assert second["message"]["thread_ts"] == root["ts"] == first["message"]["thread_ts"]
    client.chat_update(channel="C0APPROVALS", ts=first["ts"], text="escalated, edited")
    messages = {m["text"]: m for m in workspace.messages["C0APPROVALS"]}
    assert messages["escalated, edited"]["thread_ts"] == root["ts"]  # an edit stays in its thread
    parent = messages["request #1"]
    assert (parent["thread_ts"], parent["reply_count"], parent["latest_reply"]) == (root["ts"], 2, second["ts"])
    client.chat_update(channel="C0APPROVALS", ts=root["ts"], text="request #1, decided")
    assert workspace.find_message("C0APPROVALS", root["ts"])["reply_count"] == 2
    client.chat_delete(channel="C0APPROVALS", ts=second["ts"])
    assert workspace.find_message("C0APPROVALS", root["ts"])["reply_count"] == 1
    orphan = client.chat_postMessage(channel="C0APPROVALS", text="lost", thread_ts="1.000001")
    assert "reply_count" not in orphan["message"] and "parent_user_id" not in orphan["message"]


def test_an_options_load_answer_is_checked_as_slack_reads_it() -> None:
    option = {"text": {"type": "plain_text", "text": "billing · database"}, "value": "r:abc"}
    assert options_problems({"option_groups": [{"label": {"type": "plain_text", "text": "db"},
                                                "options": [option]}]}) == []
    assert options_problems({"options": [option], "option_groups": []}) == [
        "an answer has options or option_groups, not both"]
    assert "75" in options_problems({"options": [{**option, "text": {"type": "plain_text", "text": "x" * 76}}]})[0]
    assert options_problems({"options": [option] * 101}) == ["at most 100 options, not 101"]
