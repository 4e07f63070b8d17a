"""The person clicking Approve or Deny is read from Slack after the ack, before anything changes: a deactivated
approver cannot decide even when the ``user_change`` event never arrived (issue 11, "Decisions re-check the
clicker fresh")."""

from __future__ import annotations

from tests.handlers.conftest import Bot
from tests.handlers.test_e2e import submit_request


def test_an_approver_deactivated_without_an_event_cannot_approve(bot: Bot) -> None:
    request_id = submit_request(bot)
    bot.fake.add_user("UDANA", "dana@example.com", deleted=True)  # deactivated in Slack; the event was missed
    assert not bot.container.directory.identity("UDANA", bot.clock.now()).deactivated  # the copy has not heard
    bot.fake.clear()

    reply = bot.sender.block_actions("UDANA", "approve", value=str(request_id), channel_id="DUDANA")
    assert reply.status == 200
    assert [c["user"] for c in bot.fake.calls_to("users.info")] == ["UDANA"]
    (told,) = bot.fake.calls_to("chat.postEphemeral")
    assert told["user"] == "UDANA" and "not an approver" in told["text"]
    record = bot.container.service.get(request_id)
    assert record.state == "pending" and record.votes == ()

    bot.sender.block_actions("UDANA", "deny", value=str(request_id), channel_id="DUDANA")
    assert bot.container.service.get(request_id).state == "pending"  # nor deny

    bot.sender.block_actions("UERIN", "approve", value=str(request_id), channel_id="DUERIN")
    assert bot.container.service.get(request_id).state == "active"


def test_when_slack_cannot_confirm_the_clicker_nothing_is_decided(bot: Bot) -> None:
    request_id = submit_request(bot)
    bot.fake.fail_next("users.info", error="internal_error", status=500, retry_after=None)
    bot.sender.block_actions("UDANA", "approve", value=str(request_id), channel_id="DUDANA")
    (told,) = bot.fake.calls_to("chat.postEphemeral")
    assert "nothing was decided" in told["text"]
    assert bot.container.service.get(request_id).state == "pending"
