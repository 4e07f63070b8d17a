"""Concurrent clicks over the real endpoint resolve to exactly one outcome (SPEC §8; SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from store import audit as audit_log
from tests.handlers.conftest import Bot
from tests.handlers.test_e2e import choose_resource, open_modal, submit_request, values


def at_once(*clicks: Callable[[], Any]) -> list[Any]:
    """Run the clicks in threads released together; returns their results."""
    start = threading.Barrier(len(clicks))
    results: list[Any] = [None] * len(clicks)

    def run(i: int) -> None:
        start.wait()
        results[i] = clicks[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clicks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def audit(bot: Bot, request_id: int) -> list[str]:
    with bot.container.db.begin() as session:
        return [e.event for e in audit_log.audit_events(request_id=request_id, session=session)]


def test_a_double_click_and_a_slack_retry_grant_once(bot: Bot) -> None:
    request_id = submit_request(bot)

    def click() -> int:
        return bot.sender.block_actions("UDANA", "approve", value=str(request_id), channel_id="DUDANA").status

    assert at_once(click, click, click) == [200, 200, 200]
    record = bot.container.service.get(request_id)
    assert record.state == "active"
    assert [op for op, _ in bot.noop.calls] == ["grant"]
    assert len(record.votes) == 1
    assert audit(bot, request_id).count("approved") == 1 and audit(bot, request_id).count("granted") == 1


@pytest.mark.parametrize("attempt", range(3))
def test_approve_and_deny_at_the_same_moment_have_one_outcome(bot: Bot, attempt: int) -> None:
    request_id = submit_request(bot)
    at_once(
        lambda: bot.sender.block_actions("UDANA", "approve", value=str(request_id), channel_id="DUDANA"),
        lambda: bot.sender.block_actions("UERIN", "deny", value=str(request_id), channel_id="DUERIN"),
    )
    record = bot.container.service.get(request_id)
    events = audit(bot, request_id)
    grants = [op for op, _ in bot.noop.calls if op == "grant"]
    if record.state == "denied":
        assert "approved" not in events and events.count("denied") == 1 and not grants
    else:
        assert record.state == "active" and "denied" not in events
        assert events.count("approved") == 1 and grants == ["grant"]


def test_an_escalation_timer_and_an_approval_at_once(bot: Bot) -> None:
    request_id = submit_request(bot)
    bot.clock.advance(minutes=31)  # the escalation is due
    at_once(
        lambda: bot.container.worker.run_due(),
        lambda: bot.sender.block_actions("UDANA", "approve", value=str(request_id), channel_id="DUDANA"),
    )
    record = bot.container.service.get(request_id)
    assert record.state == "active"
    assert [op for op, _ in bot.noop.calls] == ["grant"]
    assert audit(bot, request_id).count("approved") == 1
    bot.container.worker.run_due(now=bot.clock.advance(hours=3))  # later timers find it decided
    assert bot.container.service.get(request_id).state in ("active", "expired")
    assert audit(bot, request_id).count("timed_out") == 0


def _submission_bytes(bot: Bot) -> bytes:
    """One signed-ready ``view_submission`` body, byte for byte what Slack would (re)deliver."""
    view = choose_resource(bot, open_modal(bot))
    payload = bot.sender._interactive(  # noqa: SLF001 — the sender's own envelope, sent as raw bytes
        "view_submission", "UALICE", trigger_id=bot.sender.new_trigger_id(),
        view=bot.sender._view(view, values("2")), response_urls=[])  # noqa: SLF001
    return urlencode({"payload": json.dumps(payload)}).encode()


@pytest.mark.parametrize("when", ["one after another", "at once"])
def test_the_same_signed_submission_three_times_makes_one_request_and_one_set_of_dms(bot: Bot, when: str) -> None:
    body = _submission_bytes(bot)

    def deliver() -> tuple[int, bytes]:
        reply = bot.sender.raw(body, "application/x-www-form-urlencoded")
        return reply.status, reply.body.strip(b"{} ")

    replies = [deliver() for _ in range(3)] if when == "one after another" else at_once(deliver, deliver, deliver)
    assert replies == [(200, b"")] * 3  # each delivery is acknowledged, none shows an error
    (request,) = bot.container.service.list()
    bot.outbox.send_due()
    dms = [c["channel"] for c in bot.fake.calls_to("chat.postMessage")]
    assert sorted(dms) == ["UALICE", "UDANA", "UERIN"]
    assert audit(bot, request.id).count("submitted") == 1
