"""Concurrent clicks over the real endpoint resolve to exactly one outcome (SPEC §8; SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import pytest

from policy.errors import InvalidRequest
from store import audit as audit_log
from tests.handlers.conftest import Bot
from tests.handlers.slow_slack import wait_until
from tests.handlers.test_e2e import choose_resource, dms_to, open_modal, requests, submit_request, values


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


def test_all_of_approvers_and_their_double_clicks_at_once_on_a_slow_slack_grant_once_in_the_background(
    bot: Bot,
) -> None:
    """The serving bot: grant work on a background thread, so no click reads the answer back; each click's
    listener reads the request before the slow ``users.info`` (0.6 s, one 429 among them), so every vote is
    written after the others' reads: the record each listener read is stale by then and must not decide."""
    with ThreadPoolExecutor(2, thread_name_prefix="connector") as background:
        bot.container.worker.background = background
        _all_of_at_once(bot)


def _all_of_at_once(bot: Bot) -> None:
    view = choose_resource(bot, open_modal(bot))
    assert bot.sender.view_submission("UALICE", view, values("1", permission="read_write")).status == 200
    (request,) = requests(bot)
    assert request.flow_name == "write-prod"  # ALL OF: dba (Dana) and security (Frank)
    bot.fake.method_latency["users.info"] = 0.6
    bot.fake.rate_limit("users.info", times=1, retry_after=1)

    def click(user: str) -> Callable[[], int]:
        return lambda: bot.sender.block_actions(user, "approve", value=str(request.id), channel_id=f"D{user}").status

    assert at_once(click("UDANA"), click("UFRANK"), click("UDANA"), click("UFRANK")) == [200] * 4
    wait_until(lambda: bot.container.service.get(request.id).state == "active", "grant", timeout=30)
    record = bot.container.service.get(request.id)
    assert record.state == "active"
    assert sorted(v.approver_id for v in record.votes) == ["UDANA", "UFRANK"]
    assert bot.noop.calls == [("grant", record.grants[0].id)]
    events = audit(bot, request.id)
    assert events.count("vote") == 2 and events.count("approved") == 1 and events.count("granted") == 1
    # the first voter is told who is still awaited; the last vote and the double clicks say nothing
    (told,) = bot.fake.calls_to("chat.postEphemeral")
    waiting = {"UDANA": "waiting for group 2", "UFRANK": "waiting for group 1"}
    assert told["user"] in waiting and waiting[told["user"]] in told["text"]
    bot.outbox.send_due()
    assert len([m for m in dms_to(bot, "UALICE") if str(m.get("text", "")).startswith("✅ You have")]) == 1


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


def test_a_submission_delivered_again_after_its_input_stopped_validating_is_acknowledged_like_the_first(
        bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay check runs only where it matters: here, before an error would be shown for a request that
    exists (the policy changed between the deliveries, say)."""
    body = _submission_bytes(bot)
    first = bot.sender.raw(body, "application/x-www-form-urlencoded")
    assert first.status == 200 and not first.body.strip(b"{} ")

    def refuse(*_: Any) -> None:
        raise InvalidRequest("That flow no longer applies.", field="resource")

    monkeypatch.setattr(bot.container.service, "preview", refuse)
    again = bot.sender.raw(body, "application/x-www-form-urlencoded")
    assert again.status == 200 and not again.body.strip(b"{} ")  # no error for the request that exists
    (request,) = bot.container.service.list()
    other = bot.sender.raw(_submission_bytes(bot), "application/x-www-form-urlencoded")  # a new view: the error
    assert "That flow no longer applies." in json.loads(other.body)["errors"]["resource"]
    assert [r.id for r in bot.container.service.list()] == [request.id]
