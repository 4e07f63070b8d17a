"""Break-glass in the demo: granted at once, the SRE leads get a review message (Acknowledge / Revoke now), and
a reviewer's "Revoke now" really revokes (the webhook connector's signed calls reach the demo)."""

from __future__ import annotations

from bot.demo.server import Demo
from tests.demo.conftest import assert_valid_block_kit, state, wait_for
from tests.demo.steps import act, block, buttons, choose_permission, click, dm, fill, request_modal, texts


def test_break_glass_is_granted_at_once_and_a_reviewer_revokes_it(demo: Demo) -> None:
    view, values, _ = request_modal(demo, "UALICE", "search", "search-api · service")
    view, values = choose_permission(demo, "UALICE", view, values, "admin")
    assert block(view, "duration_hours") is None  # no hours: the flow's grant_for applies
    assert act(demo, user="UALICE", type="submit", view_id=view["id"],
               values=fill(view, values, None, "search is down, INC-77")) == {}
    wait_for("the grant DM", lambda: "You have *admin* on `search-api`" in texts(demo, "UALICE"))
    assert state(demo, "UALICE")["requests"][0]["state"] == "active"

    review = wait_for("bob's review", lambda: next((m for m in dm(demo, "UBOB") if "Break-glass" in m["text"]), None))
    assert [b["action_id"] for b in buttons(review)] == ["acknowledge", "review_revoke"]
    assert "needs your decision" not in texts(demo, "UBOB"), "nobody is asked to approve"
    click(demo, "UBOB", "DUBOB", review, "review_revoke")
    webhooks = wait_for("the revoke call", lambda: [e for e in state(demo, "UALICE")["log"]
                                                    if e["kind"] == "webhook" and "revoke" in e["summary"]])
    assert webhooks[0]["ok"] and webhooks[0]["detail"]["signature_valid"]
    reviewed = wait_for("the review updated in place", lambda: next(
        (m for m in dm(demo, "UBOB") if m["ts"] == review["ts"] and "edited" in m and not buttons(m)), None))
    assert "Revoked at review" in reviewed["text"]
    wait_for("revoked", lambda: state(demo, "UALICE")["requests"][0]["state"] == "revoked")
    assert assert_valid_block_kit(demo) > 5
