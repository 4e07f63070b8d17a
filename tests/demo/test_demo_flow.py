"""The demo without a browser: the page's JSON endpoints drive the real bot with signed payloads.

Request, field error, escalation, approval, grant, extension, expiry and revocation; the webhook connector's
signed calls reaching the demo; the page's bad input answered with a clear error.
"""

from __future__ import annotations

from typing import Any

from bot.demo.server import Demo
from tests.demo.conftest import assert_valid_block_kit, post, state, wait_for


def dm(demo: Demo, user: str) -> list[dict[str, Any]]:
    return next(c for c in state(demo, user)["channels"] if c["kind"] == "dm")["messages"]


def texts(demo: Demo, user: str) -> str:
    return "\n".join(m["text"] for m in dm(demo, user))


def act(demo: Demo, **body: Any) -> dict[str, Any]:
    status, answer = post(demo, "demo/act", body)
    assert status == 200, answer
    return answer


def request_modal(demo: Demo, user: str, query: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """/access, type ``query`` in the resource picker, pick the first option; the modal and its values."""
    act(demo, user=user, type="command", text="/access")
    view = wait_for("the modal", lambda: state(demo, user)["modals"])[-1]
    options = act(demo, user=user, type="suggest", view_id=view["id"], action_id="resource", block_id="resource",
                  value=query)["options"]
    assert options, f"no resource matches {query!r}"
    chosen = {"type": "external_select", "selected_option": options[0]}
    values: dict[str, Any] = {"resource": {"resource": chosen}}
    act(demo, user=user, type="click", container={"type": "view", "view_id": view["id"]},
        action={"type": "external_select", "action_id": "resource", "block_id": "resource", **chosen}, values=values)
    view = state(demo, user)["modals"][-1]
    return view, values


def fill(view: dict[str, Any], values: dict[str, Any], duration: str, why: str) -> dict[str, Any]:
    permission = next(b for b in view["blocks"] if b["block_id"] == "permission")["element"]["options"][0]
    return {**values, "permission": {"permission": {"type": "static_select", "selected_option": permission}},
            "duration_hours": {"duration_hours": {"type": "plain_text_input", "value": duration}},
            "justification": {"justification": {"type": "plain_text_input", "value": why}}}


def test_a_request_escalates_is_approved_granted_and_expires(demo: Demo) -> None:
    view, values = request_modal(demo, "UALICE", "bill")
    assert view["blocks"][0]["element"]["initial_option"]["value"] == "prod-postgres/database/billing"

    refused = act(demo, user="UALICE", type="submit", view_id=view["id"], values=fill(view, values, "0", "INC-1"))
    assert set(refused["errors"]) == {"duration_hours"}
    assert state(demo, "UALICE")["modals"], "a refused submission keeps the modal open"
    assert act(demo, user="UALICE", type="submit", view_id=view["id"], values=fill(view, values, "1", "INC-1")) == {}
    assert state(demo, "UALICE")["modals"] == []
    wait_for("the approvers' DMs", lambda: "needs your decision" in texts(demo, "UBOB"))
    assert "waiting for approval" in texts(demo, "UALICE")

    # nobody answers: "escalate now" moves the clock to the escalation, and the next tier (the CTO) is asked
    assert "needs your decision" not in texts(demo, "UCTO")
    status, moved = post(demo, "demo/time", {"do": "escalate"})
    assert status == 200 and "escalate" in moved["message"]
    wait_for("the CTO's DM", lambda: "needs your decision" in texts(demo, "UCTO"))

    asked = next(m for m in dm(demo, "UBOB") if "needs your decision" in m["text"])
    approve = next(e for b in asked["blocks"] if b["type"] == "actions" for e in b["elements"]
                   if e["action_id"] == "approve")
    act(demo, user="UBOB", type="click", action={**approve, "block_id": "decision"},
        container={"type": "message", "channel_id": "DUBOB", "message_ts": asked["ts"]})
    updated = wait_for("the DM updated in place", lambda: next(
        (m for m in dm(demo, "UBOB") if m["ts"] == asked["ts"] and "edited" in m), None))
    assert "Approved" in updated["text"]
    wait_for("alice's grant DM", lambda: "You have *read_only* on `billing`" in texts(demo, "UALICE"))
    connectors = [e["title"] for e in state(demo, "UALICE")["log"] if e["kind"] == "connector"]
    assert "prod-postgres: grant" in connectors
    assert state(demo, "UALICE")["requests"][0]["state"] == "active"

    act(demo, user="UALICE", type="command", text="/access extend 2")
    wait_for("the ephemeral reply", lambda: any("extended until" in e["text"] for c in state(demo, "UALICE")["channels"]
                                              for e in c["ephemerals"]))
    post(demo, "demo/time", {"do": "expire"})
    wait_for("alice's revocation DM", lambda: "has ended" in texts(demo, "UALICE"))
    log = state(demo, "UALICE")["log"]
    assert [e["title"] for e in log if e["kind"] == "connector"][-2:] == ["prod-postgres: extend",
                                                                          "prod-postgres: revoke"]
    assert state(demo, "UALICE")["requests"][0]["state"] == "expired"
    assert assert_valid_block_kit(demo) > 5


def test_the_webhook_connector_calls_the_demo_signed(demo: Demo) -> None:
    view, values = request_modal(demo, "UALICE", "search")
    values = fill(view, values, "1", "deploy the search fix")
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
