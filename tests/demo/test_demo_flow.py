"""The demo without a browser: the page's JSON endpoints drive the real bot with signed payloads.

Request (the multi-select picker, the permission and hours the bot redraws), field error, the request's post in
the approval channel (a non-approver's click refused ephemerally), escalation, approval, grant, extension, expiry
and revocation told in the post's thread; the webhook connector's signed calls reaching the demo; the page's bad
input answered with a clear error.
"""

from __future__ import annotations

from typing import Any

from bot.demo.server import Demo
from tests.demo.conftest import assert_valid_block_kit, post, state, wait_for
from tests.demo.steps import act, block, choose_permission, click, conversation, dm, fill, request_modal, texts


def test_a_request_escalates_is_approved_granted_and_expires(demo: Demo) -> None:
    view, values, group = request_modal(demo, "UALICE", "bill", "billing · database")
    assert group == "prod-postgres"  # the picker's options are grouped by integration
    (chip,) = block(view, "resource")["element"]["initial_options"]  # type: ignore[index]
    assert chip["text"]["text"] == "billing · database" and chip["value"].startswith("r:")
    view, values = choose_permission(demo, "UALICE", view, values, "read_only")
    hours = block(view, "duration_hours")
    assert hours is not None and not hours.get("optional"), "prod-db-read asks for hours"

    refused = act(demo, user="UALICE", type="submit", view_id=view["id"], values=fill(view, values, "0", "INC-1"))
    assert set(refused["errors"]) == {"duration_hours"}
    assert state(demo, "UALICE")["modals"], "a refused submission keeps the modal open"
    assert act(demo, user="UALICE", type="submit", view_id=view["id"], values=fill(view, values, "1", "INC-1")) == {}
    assert state(demo, "UALICE")["modals"] == []
    wait_for("the approvers' DMs", lambda: "needs your decision" in texts(demo, "UBOB"))
    assert "waiting for approval" in texts(demo, "UALICE")
    asked = next(m for m in dm(demo, "UBOB") if "needs your decision" in m["text"])
    quoted = [b for b in asked["blocks"] if b["type"] == "rich_text"]  # the justification, inert
    assert [e["elements"][0]["text"] for b in quoted for e in b["elements"]] == ["INC-1"]

    # the same request in the flow's channel: anyone may click, only approvers' clicks count
    approvals = wait_for("the channel post", lambda: conversation(demo, "UCAROL", "#access-approvals")["messages"])
    (posted,) = approvals
    assert "needs a decision from an approver" in posted["text"]
    click(demo, "UCAROL", "C0APPROVALS", posted, "approve")
    refusal = wait_for("carol's refusal", lambda: conversation(demo, "UCAROL", "#access-approvals")["ephemerals"])
    assert "not an approver" in refusal[0]["text"]
    assert not conversation(demo, "UALICE", "#access-approvals")["ephemerals"], "only carol sees it"
    assert state(demo, "UALICE")["requests"][0]["state"] == "pending"

    # nobody answers: "escalate now" moves the clock to the escalation, and the next tier (the CTO) is asked
    assert "needs your decision" not in texts(demo, "UCTO")
    status, moved = post(demo, "demo/time", {"do": "escalate"})
    assert status == 200 and "escalate" in moved["message"]
    wait_for("the CTO's DM", lambda: "needs your decision" in texts(demo, "UCTO"))

    click(demo, "UBOB", "DUBOB", asked, "approve")
    updated = wait_for("the DM updated in place", lambda: next(
        (m for m in dm(demo, "UBOB") if m["ts"] == asked["ts"] and "edited" in m), None))
    assert "Approved" in updated["text"]
    wait_for("alice's grant DM", lambda: "You have *read_only* on `billing`" in texts(demo, "UALICE"))
    connectors = [e["title"] for e in state(demo, "UALICE")["log"] if e["kind"] == "connector"]
    assert "prod-postgres: grant" in connectors
    assert state(demo, "UALICE")["requests"][0]["state"] == "active"
    # the channel post is updated in place too, and the escalation and the grant are told in its thread
    def thread() -> list[dict[str, Any]]:
        return [m for m in conversation(demo, "UALICE", "#access-approvals")["messages"]
                if m.get("thread_ts") == posted["ts"] and m["ts"] != posted["ts"]]

    wait_for("the grant in the thread", lambda: any(m["text"].startswith("✅ Granted") for m in thread()))
    replies = thread()
    assert replies[0]["text"].startswith("⏫ Escalated to tier 1") and "<@UCTO>" in replies[0]["text"]
    assert all(m["parent_user_id"] == "UACCESSBOT" for m in replies)
    root = next(m for m in conversation(demo, "UALICE", "#access-approvals")["messages"] if m["ts"] == posted["ts"])
    assert "Approved" in root["text"] and "edited" in root and root["reply_count"] == len(replies)

    act(demo, user="UALICE", type="command", text="/access extend 2")
    wait_for("the ephemeral reply", lambda: any("extended until" in e["text"] for c in state(demo, "UALICE")["channels"]
                                              for e in c["ephemerals"]))
    post(demo, "demo/time", {"do": "expire"})
    wait_for("alice's revocation DM", lambda: "has ended" in texts(demo, "UALICE"))
    log = state(demo, "UALICE")["log"]
    assert [e["title"] for e in log if e["kind"] == "connector"][-2:] == ["prod-postgres: extend",
                                                                          "prod-postgres: revoke"]
    assert state(demo, "UALICE")["requests"][0]["state"] == "expired"
    expired = wait_for("the expiry in the thread", lambda: [m["text"] for m in thread()
                                                            if m["text"].startswith("⌛ Expired")])
    assert "billing" in expired[0]
    assert assert_valid_block_kit(demo) > 5


def test_the_webhook_connector_calls_the_demo_signed(demo: Demo) -> None:
    view, values, group = request_modal(demo, "UALICE", "search", "search-api · service")
    assert group == "deploy"
    view, values = choose_permission(demo, "UALICE", view, values, "deployer")
    assert block(view, "duration_hours") is None  # deploy-services does not ask for hours: its grant_for applies
    values = fill(view, values, None, "deploy the search fix")
    assert act(demo, user="UALICE", type="submit", view_id=view["id"], values=values) == {}
    call = wait_for("the webhook call", lambda: [e for e in state(demo, "UALICE")["log"] if e["kind"] == "webhook"])[0]
    assert call["ok"] and call["detail"]["signature_valid"]
    assert call["detail"]["body"]["action"] == "grant"
    assert call["detail"]["headers"]["x-accessbot-signature"].startswith("v1=")
    wait_for("the grant DM", lambda: "You have *deployer* on `search-api`" in texts(demo, "UALICE"))
    recorded = next(e for e in state(demo, "UALICE")["log"] if e["title"] == "deploy: grant")
    assert recorded["detail"]["result"]["external_ref"] == f"demo-deploy-{call['detail']['body']['grant']['id']}"


def test_the_page_gets_clear_errors(demo: Demo) -> None:
    assert post(demo, "demo/act", {"user": "UNOBODY", "type": "command", "text": "/access"}) == (
        400, {"error": "pick who you are first"})
    status, answer = post(demo, "demo/act", {"user": "UALICE", "type": "command", "text": "/deploy"})
    assert status == 400 and "/access" in answer["error"]
    status, answer = post(demo, "demo/act", {"user": "UALICE", "type": "submit", "view_id": "V404", "values": {}})
    assert status == 409 and answer["error"] == "no view V404"
    assert post(demo, "demo/time", {"do": "rewind"}) == (400, {"error": "unknown time control 'rewind'"})
    assert post(demo, "demo/time", {"do": "expire"})[1]["message"] == "Nothing is waiting to expire."


def test_help_is_an_ephemeral_reply_through_the_response_url(demo: Demo) -> None:
    act(demo, user="UBOB", type="command", text="/access help")
    channel = wait_for("the reply", lambda: next(c for c in state(demo, "UBOB")["channels"] if c["kind"] == "dm")
                       if next(c for c in state(demo, "UBOB")["channels"] if c["kind"] == "dm")["ephemerals"] else None)
    assert "just-in-time access" in channel["ephemerals"][0]["text"]
    assert not any(c["ephemerals"] for c in state(demo, "UALICE")["channels"]), "only bob sees it"
