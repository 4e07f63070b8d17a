"""Block Kit of the access flows (issue 15): several resources within Slack's limits, inert text, no made-up
risk, Extend only where allowed, break-glass reviews, channel posts, the duration hint and closed windows."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from handlers.views import approval, home, request_modal
from policy.request_form import RequestForm
from tests.handlers.test_views import NOW, action_ids, mrkdwn_texts, quoted, record, valid_message, valid_view


@pytest.mark.parametrize(
    ("description", "state", "hint"),
    [
        ("unknown yet: never 'no limit'", request_modal.ModalState(), "up to the flow's maximum"),
        ("every flow has a limit", request_modal.ModalState(max_hours=4), "at most 4"),
        ("an indefinite flow applies", request_modal.ModalState(indefinite=True), "no upper limit"),
    ],
)
def test_duration_hint(description: str, state: request_modal.ModalState, hint: str) -> None:
    duration = next(b for b in request_modal.build(state)["blocks"] if b["block_id"] == "duration_hours")
    assert hint in duration["hint"]["text"] and "no limit" not in duration["hint"]["text"], description

def test_a_request_for_many_long_named_resources_stays_within_slacks_limits() -> None:
    keys = tuple(f"db/database/{'x' * 190}{i:03d}" for i in range(100))
    message = approval.approval_message(record(resource_keys=keys, justification="INC-9 " + "y" * 900))
    valid_message(message)
    assert len(message["blocks"]) <= 50 and len(message["text"]) <= 4000
    assert all(len(t) <= 3000 for t in mrkdwn_texts(message["blocks"]).split("\n\n"))
    head = message["blocks"][1]
    assert head["accessory"]["action_id"] == "show_resources" and head["accessory"]["value"] == "3"
    assert " more" in head["text"]["text"] and "*Duration:*" in head["text"]["text"]
    assert quoted(message["blocks"]) == ["INC-9 " + "y" * 900]
    everything = approval.resource_list_modal(record(resource_keys=keys))
    valid_view(everything)
    listed = " ".join(b["text"]["text"] for b in everything["blocks"])
    assert all(k.split("/")[-1] in listed for k in keys)  # the full names, none cut
    assert all(len(b["text"]["text"]) <= 3000 for b in everything["blocks"])


def test_no_risk_is_shown_when_none_is_configured() -> None:
    assert "Risk" not in mrkdwn_texts(approval.approval_message(record(risk=None))["blocks"])
    assert "*Risk:* high" in mrkdwn_texts(approval.approval_message(record(risk="high"))["blocks"])
    assert request_modal.permission_label("read_only", None) == "read_only"


def test_app_home_offers_extend_only_where_the_flow_allows_it_and_says_until_revoked() -> None:
    grant = record("active").grants[0]
    no_extend = record("active", extend_max_times=0)
    used_up = record("active", grants=(dataclasses.replace(grant, extensions_used=2),))
    indefinite = record("active", grants=(dataclasses.replace(grant, expires_at=None),), extend_max_times=0,
                        flow_snapshot={"flow": {"type": "self_serve"}})
    automatic = dataclasses.replace(indefinite, id=9, flow_snapshot={"flow": {"type": "automatic"}})
    view = home.build(home.HomeData("UALICE", active=[no_extend, used_up, indefinite, automatic]))
    valid_view(view)
    assert [a for a, _ in action_ids(view["blocks"])] == ["new_request", "revoke", "revoke", "revoke", "revoke"]
    texts = [b["text"]["text"] for b in view["blocks"] if b["type"] == "section"]
    assert "until revoked" in texts[2] and "held while you match" not in texts[2]
    assert "held while you match the flow" in texts[3]


def test_break_glass_review_message_and_its_settled_form() -> None:
    waiting = approval.approval_message(record("active", break_glass=True), "UDANA")
    valid_message(waiting)
    assert action_ids(waiting["blocks"]) == [("acknowledge", "3"), ("review_revoke", "3")]
    assert "Break-glass" in waiting["text"] and "without approval" in waiting["text"]
    done = approval.decided_message(record("active", break_glass=True, reviewed_at=NOW, reviewed_by="UDANA",
                                           review_outcome="acknowledged"))
    valid_message(done)
    assert action_ids(done["blocks"]) == [] and "Acknowledged" in done["text"] and "<@UDANA>" in done["text"]


def test_channel_post_says_who_may_decide() -> None:
    posted = approval.approval_message(record(), "C0DBA")
    valid_message(posted)
    assert "from an approver" in posted["text"] and "Only eligible approvers" in mrkdwn_texts(posted["blocks"])


def test_a_closed_window_says_when_the_flow_opens_next_and_for_others_only_needs_someone() -> None:
    opens = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    view = request_modal.build(request_modal.state_of(RequestForm(opens_next=("office-write", opens))))
    valid_view(view)
    notice = view["blocks"][0]["text"]["text"]
    assert "opens next" in notice and "office-write" in notice and f"<!date^{int(opens.timestamp())}^" in notice
    others_only = request_modal.build(request_modal.ModalState(grantees="required", grantee_hint="pick people"))
    grantees = next(b for b in others_only["blocks"] if b.get("block_id") == "grantees")
    assert grantees["optional"] is False and grantees["hint"]["text"] == "pick people"
