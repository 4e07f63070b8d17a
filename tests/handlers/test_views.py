"""The pure Block Kit builders: valid Block Kit (slack_sdk's models), stable ids, escaped user text."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.lifecycle.records import GrantRecord, RequestRecord
from handlers.views import approval, grantee_mfa, home, mfa_enrolment, request_modal
from handlers.views.common import escape
from handlers.views.notifications import Notice, render

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def record(
    state: str = "pending",
    justification: str = "INC-1 <!channel> & @here <http://evil|click>",
    **changes: Any,
) -> RequestRecord:
    grant = GrantRecord(
        7,
        3,
        "UALICE",
        "alice@example.com",
        "db",
        "db/database/billing",
        "billing",
        "database",
        "read_only",
        "active",
        NOW,
        NOW + timedelta(hours=2),
        None,
        None,
        0,
        1,
        None,
    )
    fields: dict[str, Any] = dict(
        id=3,
        state=state,
        flow_name="read-any",
        requester_id="UALICE",
        requester_email="alice@example.com",
        grantee_ids=("UALICE",),
        integration="db",
        permission="read_only",
        resource_keys=("db/database/billing",),
        duration=timedelta(hours=2),
        justification=justification,
        escalation_tier=0,
        created_at=NOW,
        decided_at=None,
        decided_by=None,
        decision_reason=None,
        pending_until=NOW + timedelta(hours=2),
        risk="medium",
        require_approver_reason=False,
        extend_max_times=2,
        extend_each=timedelta(hours=1),
        grants=(grant,) if state != "pending" else (),
        votes=(),
    )
    fields.update(changes)
    return RequestRecord(**fields)


def valid_view(view: dict[str, Any]) -> None:
    View(**view).validate_json()


def valid_message(message: dict[str, Any]) -> None:
    assert message["text"]
    for block in Block.parse_all(message["blocks"]):
        block.validate_json()


def action_ids(blocks: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(e["action_id"], e.get("value")) for b in blocks if b["type"] == "actions" for e in b["elements"]]


@pytest.mark.parametrize(
    ("description", "state", "expected"),
    [
        (
            "the opening modal has no permission or grantees",
            request_modal.ModalState(),
            ["resource", "duration_hours", "justification"],
        ),
        (
            "chosen resources show their permissions",
            request_modal.ModalState(
                resources=(("r:aaaa", "billing · database"), ("r:bbbb", "ledger · database")),
                permissions=(("read_only", "ro"), ("read_write", "rw")),
                max_hours=4,
            ),
            ["resource", "permission", "duration_hours", "justification"],
        ),
        (
            "flows for others add grantees; mfa adds the code",
            request_modal.ModalState(grantees="optional", require_mfa=True, require_duration=True),
            ["resource", "grantees", "duration_hours", "justification", "mfa_code"],
        ),
        (
            "no flow asks for hours: no duration field",
            request_modal.ModalState(show_duration=False),
            ["resource", "justification"],
        ),
    ],
)
def test_request_modal_blocks(description: str, state: request_modal.ModalState, expected: list[str]) -> None:
    view = request_modal.build(state)
    valid_view(view)
    assert view["callback_id"] == "access_request"
    assert [b["block_id"] for b in view["blocks"]] == expected, description
    for block in view["blocks"]:
        assert block["element"]["action_id"] == block["block_id"]
    resource = view["blocks"][0]["element"]
    assert resource["type"] == "multi_external_select" and resource["min_query_length"] == 0
    assert resource["max_selected_items"] == 100
    assert [o["value"] for o in resource.get("initial_options", [])] == [v for v, _ in state.resources]
    grantees = next((b for b in view["blocks"] if b["block_id"] == "grantees"), None)
    if grantees is not None:
        assert grantees["element"]["max_selected_items"] == 20


def test_request_modal_hint_shows_the_max_and_single_permission_is_preselected() -> None:
    view = request_modal.build(
        request_modal.ModalState(resources=(("r:k", "billing"),), permissions=(("read_only", "ro"),), max_hours=1.5)
    )
    duration = next(b for b in view["blocks"] if b["block_id"] == "duration_hours")
    assert "at most 1.5" in duration["hint"]["text"]
    permission = next(b for b in view["blocks"] if b["block_id"] == "permission")
    assert permission["element"]["initial_option"]["value"] == "read_only"


def test_parse_submission() -> None:
    view = {
        "state": {
            "values": {
                "resource": {
                    "resource": {
                        "type": "external_select",
                        "selected_option": {"value": "db/database/billing"},
                    }
                },
                "permission": {
                    "permission": {"type": "static_select", "selected_option": {"value": "read_only"}}
                },
                "grantees": {"grantees": {"type": "multi_users_select", "selected_users": ["UBOB"]}},
                "duration_hours": {"duration_hours": {"type": "plain_text_input", "value": "1.5"}},
                "justification": {"justification": {"type": "plain_text_input", "value": "why"}},
            }
        }
    }
    parsed = request_modal.parse(view)
    assert parsed == request_modal.Submission(
        ["db/database/billing"], "read_only", ["UBOB"], "1.5", "why", None
    )
    values = view["state"]["values"]
    values["resource"]["resource"] = {"type": "multi_external_select", "selected_options": [
        {"value": "r:one"}, {"value": "b:two"}]}
    assert request_modal.parse(view).resources == ["r:one", "b:two"]


def mrkdwn_texts(blocks: list[dict[str, Any]]) -> str:
    """Everything Slack would parse as mrkdwn in these blocks (section and context texts)."""
    out = []
    for b in blocks:
        if b["type"] == "section":
            out.append(b["text"]["text"])
        elif b["type"] == "context":
            out.extend(e.get("text", "") for e in b["elements"])
    return "\n".join(out)


def quoted(blocks: list[dict[str, Any]]) -> list[str]:
    """The plain texts of the rich_text quotes (inert user text)."""
    return [e["text"] for b in blocks if b["type"] == "rich_text" for q in b["elements"]
            if q["type"] == "rich_text_quote" for e in q["elements"] if e["type"] == "text"]


def test_approval_dm_has_decision_buttons_and_shows_user_text_inert() -> None:
    message = approval.approval_message(record())
    valid_message(message)
    assert action_ids(message["blocks"]) == [("approve", "3"), ("deny", "3")]
    text = mrkdwn_texts(message["blocks"])
    assert "<!channel>" not in text and "<http://evil" not in text and "@here" not in text and "INC-1" not in text
    assert quoted(message["blocks"]) == ["INC-1 <!channel> & @here <http://evil|click>"]
    assert "<@UALICE>" in message["text"] and "UALICE needs" not in message["text"]  # named, never a raw id


def test_decided_dm_has_no_buttons_and_says_who_when_why_until() -> None:
    decided = record("active", decided_by="UDANA", decided_at=NOW, decision_reason="ok <@UBOB>")
    message = approval.decided_message(decided)
    valid_message(message)
    assert action_ids(message["blocks"]) == []
    text = mrkdwn_texts(message["blocks"])
    assert "<@UDANA>" in text and "Until" in text and "<!date^" in text and "UBOB" not in text
    assert "ok <@UBOB>" in quoted(message["blocks"])
    denied = approval.decided_message(record("denied", decided_by="UERIN", decided_at=NOW))
    assert "Denied" in denied["text"] and action_ids(denied["blocks"]) == []


def test_reason_modal_round_trip() -> None:
    view = approval.reason_modal(3, "deny")
    valid_view(view)
    assert view["callback_id"] == "decision_reason"
    (block,) = view["blocks"]
    assert block["block_id"] == block["element"]["action_id"] == "reason"
    assert block["element"]["max_length"] == 124
    view["state"] = {"values": {"reason": {"reason": {"type": "plain_text_input", "value": "no"}}}}
    assert approval.parse_reason(view) == (3, "deny", "no")


def test_app_home_sections_and_buttons() -> None:
    data = home.HomeData(
        "UALICE",
        active=[record("active")],
        pending=[record(id=4)],
        to_approve=[record(id=5, requester_id="UBOB")],
        history=[record("denied", id=6)],
    )
    view = home.build(data)
    valid_view(view)
    assert action_ids(view["blocks"]) == [
        ("new_request", None),
        ("extend", "3"),
        ("revoke", "3"),
        ("cancel", "4"),
        ("approve", "5"),
        ("deny", "5"),
        ("request_again", "6"),
    ]
    valid_view(home.build(home.HomeData("UALICE")))


def test_app_home_shows_grants_under_way_and_failing() -> None:
    base = record("active").grants[0]
    failing = dataclasses.replace(base, state="revoke_failed", attempts=8, last_error="connection refused <b>")
    retrying = dataclasses.replace(base, id=8, state="granting", attempts=2, last_error="HTTP 503")
    waiting = dataclasses.replace(base, id=9, state="awaiting_mfa", grantee_id="UBOB")
    data = home.HomeData("UBOB", active=[
        record("revoking", id=10, grants=(failing,)),
        record("granting", id=11, grants=(retrying,)),
        record("granting", id=12, grants=(waiting,), grantee_ids=("UBOB",)),
    ])
    view = home.build(data)
    valid_view(view)
    texts = [b["text"]["text"] for b in view["blocks"] if b["type"] == "section"]
    assert "revoke failing (8 attempts" in texts[0] and "connection refused &lt;b&gt;" in texts[0]
    assert "retrying after 2 failed attempt(s): HTTP 503" in texts[1]
    assert "waiting for you to confirm with an MFA code" in texts[2]
    assert action_ids(view["blocks"]) == [
        ("new_request", None),
        ("revoke", "11"),  # nothing to extend while it is being granted; no button on a failing revoke
        ("confirm_mfa", "12"),
        ("revoke", "12"),
    ]


@pytest.mark.parametrize(
    "kind",
    [
        "approval_request",
        "approval_update",
        "request_submitted",
        "grantee_notice",
        "request_closed",
        "access_granted",
        "access_granted_requester",
        "access_extended",
        "expiry_reminder",
        "access_ended",
        "grant_failed",
        "revoke_failing",
        "audit_post",
        "approval_progress",
        "grantee_mfa",
        "grantee_mfa_waiting",
        "grantee_mfa_expired",
        "request_approved",
        "request_escalated",
        "break_glass_notice",
        "break_glass_reviewed",
        "channel_thread",
    ],
)
def test_every_notification_renders_valid_blocks(kind: str) -> None:
    message = render(
        Notice(
            kind,
            "UALICE",
            record("active"),
            7,
            {"state": "expired", "event": "vote", "actor": "UDANA"},
            {"password": "s3cret"},
        )
    )
    assert message is not None
    valid_message(message)
    if kind == "access_granted":
        assert "s3cret" in str(message["blocks"])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a & b", "a &amp; b"),
        ("<!everyone>", "&lt;!everyone&gt;"),
        ("hi @channel", "hi @\u200bchannel"),
        ("x" * 2000, "x" * 999 + "…"),
    ],
)
def test_escape(raw: str, expected: str) -> None:
    assert escape(raw) == expected


def for_dana(state: str) -> RequestRecord:
    """Alice's request for Dana, whose grant is in ``state``."""
    base = record("granting", grantee_ids=("UDANA",))
    grant = dataclasses.replace(base.grants[0], grantee_id="UDANA", state=state)
    return dataclasses.replace(base, grants=(grant,))


def test_grantee_confirmation_dm_has_the_button_only_while_it_waits() -> None:
    waiting = grantee_mfa.confirm_message(for_dana("awaiting_mfa"), "UDANA")
    valid_message(waiting)
    assert action_ids(waiting["blocks"]) == [("confirm_mfa", "3")]
    assert "<@UALICE>" in waiting["text"] and "INC-1 <!channel>" in quoted(waiting["blocks"])[0]  # who and why
    for state, outcome in [("active", "confirmed"), ("timed_out", "passed"), ("revoked", "no longer")]:
        settled = grantee_mfa.confirm_message(for_dana(state), "UDANA")
        valid_message(settled)
        assert action_ids(settled["blocks"]) == [] and outcome in settled["text"]
    assert action_ids(grantee_mfa.confirm_message(for_dana("awaiting_mfa"), "UERIN")["blocks"]) == []


def test_grantee_code_modal_round_trip() -> None:
    view = grantee_mfa.code_modal(for_dana("awaiting_mfa"), "DUDANA", "1700000000.000100")
    valid_view(view)
    assert view["callback_id"] == "grantee_mfa"
    (field,) = [b for b in view["blocks"] if b["type"] == "input"]
    assert field["block_id"] == field["element"]["action_id"] == "mfa_code"
    view["state"] = {"values": {"mfa_code": {"mfa_code": {"type": "plain_text_input", "value": "123456"}}}}
    assert grantee_mfa.parse(view) == grantee_mfa.CodeSubmission(
        request_id=3, code="123456", channel="DUDANA", ts="1700000000.000100"
    )
    assert grantee_mfa.parse({"private_metadata": "[1]"}) is None
    assert grantee_mfa.parse({"private_metadata": '{"request_id": "x"}'}) is None


def test_enrolment_dm_shows_the_key_and_the_uri() -> None:
    uri = "otpauth://totp/accessbot:alice%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=accessbot"
    message = mfa_enrolment.enrolment_message("JBSWY3DPEHPK3PXP", uri)
    valid_message(message)
    text = str(message["blocks"])
    assert "`JBSWY3DPEHPK3PXP`" in text and "otpauth://totp/" in text and "/access mfa CODE" in text


def test_outcome_tells_an_unconfirmed_approval_from_a_request_nobody_decided() -> None:
    grant = record("active").grants[0]
    unconfirmed = record("timed_out", grants=(dataclasses.replace(grant, state="timed_out"),), decided_by="UDANA")
    waiting = record("granting", grants=(dataclasses.replace(grant, state="awaiting_mfa"),), decided_by="UDANA")
    assert approval.outcome(record("timed_out")) == "⌛ Timed out without a decision"
    assert approval.outcome(unconfirmed) == "⌛ Approved, but the grantee never confirmed with MFA"
    assert approval.outcome(waiting) == "✅ Approved — waiting for the grantee to confirm with MFA"
