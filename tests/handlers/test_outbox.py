"""OutboxSender: late approval DMs, credentials decrypted for the grantee only, retries, giving up."""

from __future__ import annotations

import json

from bot.slack.outbox import MAX_ATTEMPTS
from store import outbox as outbox_store
from tests.handlers.conftest import Bot
from tests.handlers.test_e2e import buttons, dms_to, submit_request


def test_a_late_approval_dm_shows_the_outcome_without_buttons(bot: Bot) -> None:
    request_id = submit_request(bot)
    bot.sender.block_actions("UDANA", "approve", value=str(request_id), channel_id="DUDANA")
    bot.outbox.send_due()
    (erin,) = dms_to(bot, "UERIN")
    assert buttons(erin) == [] and "Approved" in erin["text"]


def test_credentials_are_decrypted_into_the_grantee_dm(bot: Bot) -> None:
    request_id = submit_request(bot)
    bot.sender.block_actions("UDANA", "approve", value=str(request_id), channel_id="DUDANA")
    bot.outbox.send_due()
    grant_id = bot.container.service.get(request_id).grants[0].id
    secret = bot.container.secrets.encrypt(json.dumps({"user": "u_7", "password": "hunter2"}))
    with bot.container.db.begin() as session:
        outbox_store.enqueue(now=bot.clock.now(),
            kind="access_granted",
            recipient="UALICE",
            request_id=request_id,
            grant_id=grant_id,
            secret=secret, session=session
        )
    assert bot.outbox.send_due() == 1
    last = dms_to(bot, "UALICE")[-1]
    assert "hunter2" in str(last["blocks"]) and "hunter2" not in last["text"]
    assert any(b["action_id"] == "revoke" for b in buttons(last))


def test_other_failures_back_off_then_give_up(bot: Bot) -> None:
    submit_request(bot)
    bot.fake.fail_next("chat.postMessage", error="internal_error", status=500, retry_after=None, times=100)
    for _ in range(MAX_ATTEMPTS + 1):
        bot.outbox.send_due()
        bot.clock.advance(hours=2)
    with bot.container.db.begin() as session:
        rows = outbox_store.outbox_messages(session=session)
        assert rows and all(
            m.sent_at is not None and m.last_error for m in rows if m.kind != "approval_update"
        )
    assert not [c for c in bot.fake.calls if c.method == "chat.postMessage" and not c.failed]
