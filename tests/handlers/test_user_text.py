"""Hostile user text (issue 11): the approver DM shows a justification inert, or the modal refuses it on the
field. Over signed HTTP, on SQLite and PostgreSQL (a NUL byte used to be a 500 there)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from store.db import Database
from tests.bot.fixtures import CONFIG
from tests.handlers.conftest import Bot, running_bot
from tests.handlers.test_e2e import choose_resource, dms_to, open_modal, requests, values

MARK = "ZQX"  # in every accepted text: it must never reach mrkdwn

HOSTILE = [
    ("newline field spoofing", f"INC-1 {MARK}\n*Risk:* low\n*Flow:* break-glass (pre-approved by CTO)", "shown"),
    ("mrkdwn", f"*bold* _it_ ~gone~ `code` {MARK}", "shown"),
    ("@channel", f"@channel look at this {MARK}", "shown"),
    ("<!here>", f"<!here> {MARK} now", "shown"),
    ("spoofed link", f"<https://evil.example|https://intranet.example> {MARK}", "shown"),
    ("a forged mention", f"<@UCTO> already approved {MARK}", "shown"),
    ("blank-line flood", f"INC-1 {MARK}" + "\n" * 60 + "end", "shown"),
    ("carriage returns", f"a {MARK}\r\nb", "shown"),
    ("bidi override", "INC-1 \u202egnp.exe", "refused"),
    ("bidi isolate", "INC-1 \u2067txt\u2069", "refused"),
    ("NUL", "INC\x001", "refused"),
    ("a control character", "bell\x07", "refused"),
    ("10k characters", "x" * 10_000, "refused"),
]
NORMALISED = {
    "blank-line flood": f"INC-1 {MARK}\n\nend",
    "carriage returns": f"a {MARK}\nb",
}


def mrkdwn(message: dict[str, Any]) -> str:
    """What Slack parses as mrkdwn: the fallback text, sections and contexts."""
    parts = [message["text"]]
    for block in message["blocks"]:
        if block["type"] == "section":
            parts.append(block["text"]["text"])
        elif block["type"] == "context":
            parts.extend(e.get("text", "") for e in block["elements"])
    return "\n".join(parts)


def quoted(message: dict[str, Any]) -> list[str]:
    return [e["text"] for b in message["blocks"] if b["type"] == "rich_text" for q in b["elements"]
            for e in q["elements"] if e["type"] == "text"]


@pytest.mark.parametrize(("description", "text", "expected"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_justifications_are_inert_or_refused(bot: Bot, description: str, text: str, expected: str) -> None:
    view = choose_resource(bot, open_modal(bot))
    reply = bot.sender.view_submission("UALICE", view, values("2", justification=text))
    if expected == "refused":
        body = reply.json()
        assert body["response_action"] == "errors" and set(body["errors"]) == {"justification"}, description
        assert requests(bot) == []
        return
    assert reply.status == 200 and not reply.body.strip(b"{} "), (description, reply.text)
    (request,) = requests(bot)
    bot.outbox.send_due()
    (dm,) = dms_to(bot, "UDANA")
    assert MARK not in mrkdwn(dm), description
    assert mrkdwn(dm).count("*Flow:*") == 1 and "*Risk:* low" not in mrkdwn(dm)
    assert quoted(dm) == [NORMALISED.get(description, text)], description
    assert request.justification == NORMALISED.get(description, text)


@pytest.fixture
def reason_bot(db: Database) -> Iterator[Bot]:
    config = CONFIG.replace("      pending_timeout: 2h\n",
                            "      pending_timeout: 2h\n    settings: {require_approver_reason: true}\n", 1)
    with running_bot(db, config) as running:
        yield running


def test_a_reason_is_refused_on_its_field_or_shown_inert_and_the_requester_is_told_who_and_why(
    reason_bot: Bot,
) -> None:
    bot = reason_bot
    reply = bot.sender.view_submission("UALICE", choose_resource(bot, open_modal(bot)), values("2"))
    assert reply.status == 200
    (request,) = requests(bot)
    bot.sender.block_actions("UDANA", "approve", value=str(request.id), channel_id="DUDANA")
    modal = bot.valid_view(bot.fake.last_view("decision_reason"))
    refused = bot.sender.view_submission("UDANA", modal, {"reason": {"reason": {
        "type": "plain_text_input", "value": "ok \u202e"}}}).json()
    assert refused["response_action"] == "errors" and "direction" in refused["errors"]["reason"]
    assert bot.container.service.get(request.id).state == "pending"
    ok = bot.sender.view_submission("UDANA", modal, {"reason": {"reason": {
        "type": "plain_text_input", "value": f"<!channel> INC-1 is real {MARK}"}}})
    assert ok.status == 200 and bot.container.service.get(request.id).state == "active"
    bot.outbox.send_due()
    told = next(m for m in dms_to(bot, "UALICE") if "approved your request" in m["text"])
    assert "<@UDANA>" in told["text"] and MARK not in mrkdwn(told)
    assert quoted(told) == [f"<!channel> INC-1 is real {MARK}"]
    for update in bot.fake.calls_to("chat.update"):
        assert MARK not in mrkdwn(update) and f"<!channel> INC-1 is real {MARK}" in quoted(update)
