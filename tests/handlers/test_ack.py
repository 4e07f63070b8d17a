"""Slack gets its answer at once: a slow connector runs after the click is acknowledged (the serving bot)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from integrations.base import GrantResult, GrantSpec
from integrations.noop import NoopConnector
from tests.handlers.conftest import Bot
from tests.handlers.test_e2e import dms_to, submit_request

SLOW = 4.0  # longer than the 3 seconds Slack waits for an answer


class SlowConnector(NoopConnector):
    def __init__(self, inner: NoopConnector) -> None:
        super().__init__(inner.name, inner.catalog())

    def grant(self, grant: GrantSpec) -> GrantResult:
        time.sleep(SLOW)
        return super().grant(grant)


def test_approve_is_answered_before_a_slow_grant_finishes(bot: Bot) -> None:
    slow = SlowConnector(bot.noop)
    bot.container.connectors["db"] = slow
    bot.container.worker.background = ThreadPoolExecutor(2, thread_name_prefix="connector")
    request_id = submit_request(bot)

    started = time.monotonic()
    reply = bot.sender.block_actions("UDANA", "approve", value=str(request_id), channel_id="DUDANA")
    answered = time.monotonic() - started
    assert reply.status == 200
    assert answered < 2.0, f"Slack waited {answered:.1f}s for the answer"
    assert bot.container.service.get(request_id).state == "granting"

    deadline = time.monotonic() + 3 * SLOW
    while bot.container.service.get(request_id).state != "active" and time.monotonic() < deadline:
        time.sleep(0.05)
    record = bot.container.service.get(request_id)
    assert record.state == "active" and slow.calls == [("grant", record.grants[0].id)]
    bot.outbox.send_due()
    assert any(str(m.get("text", "")).startswith("✅ You have") for m in dms_to(bot, "UALICE"))
    bot.container.worker.background.shutdown(wait=True)
