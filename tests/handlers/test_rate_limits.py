"""Bursts of 429s (with Retry-After) on views.open, chat.postMessage and users.info: every modal opens, every
message is delivered exactly once, the click still decides. And the outbox paces each channel as Slack does."""

from __future__ import annotations

from datetime import timedelta

from bot.slack.pacing import ChannelPacer
from store import outbox as outbox_store
from store.db import Database
from tests.handlers.conftest import Bot
from tests.handlers.slow_slack import (
    APPROVERS,
    GROUP,
    approval_dms,
    paced_outbox,
    pick_billing,
    request_values,
    slow_bot,
    ticking,
    wait_until,
)


def test_429_bursts_open_every_modal_and_deliver_every_message_once(db: Database) -> None:
    with slow_bot(db, 0.0) as bot:
        bot.fake.rate_limit("views.open", times=2, retry_after=1)
        assert bot.sender.command("UALICE", "").status == 200
        opened = bot.fake.timed_calls("views.open")
        assert len(opened) == 1 and len([c for c in bot.fake.calls if c.method == "views.open" and c.failed]) == 2
        view = bot.fake.last_view("access_request")
        pick_billing(bot.sender, view)

        bot.fake.rate_limit("chat.postMessage", times=25, retry_after=1)
        with ticking(paced_outbox(bot), advance=lambda: bot.clock.advance(seconds=1)):
            bot.sender.view_submission("UALICE", bot.fake.last_view("access_request"), request_values())
            (request,) = bot.container.service.list()
            wait_until(lambda: len(approval_dms(bot.fake)) >= APPROVERS, "every approval DM", 30)
            wait_until(lambda: _unsent(db) == 0, "an empty outbox", 30)
        refused = [c for c in bot.fake.calls if c.method == "chat.postMessage" and c.failed]
        assert len(refused) == 25
        assert approval_dms(bot.fake) == dict.fromkeys(["UDANA", "UERIN", *GROUP], 1)  # each exactly once
        told = [c for c in bot.fake.timed_calls("chat.postMessage") if c.args["channel"] == "UALICE"]
        assert len(told) == 1  # "your request is waiting", once

        bot.fake.rate_limit("users.info", times=2, retry_after=1)
        bot.sender.block_actions("UAPPR11", "approve", value=str(request.id), channel_id="DUAPPR11")
        assert bot.container.service.get(request.id).state == "active"
        assert len(bot.fake.timed_calls("users.info")) == 1


def test_the_outbox_paces_each_channel_to_one_message_a_second(db: Database) -> None:
    with slow_bot(db, 0.0) as bot:
        bot.fake.channel_limit(1.0)  # Slack refuses a second message to a channel within the same second
        _queue_audit_posts(bot, GROUP[:20])
        sender = paced_outbox(bot)
        try:
            delivered = sender.send_due()
            # the 20 DMs and the first audit posts went out at once; the channel's later ones wait for their slot
            assert delivered >= 21
            while _unsent(db):
                bot.clock.advance(timedelta(seconds=1))
                wait_until(lambda: sender.pacer.wait_for("C0AUDIT") == 0, "the channel's next slot", 5)
                sender.send_due()
        finally:
            sender.close()
        audit = [c.at for c in bot.fake.timed_calls("chat.postMessage") if c.args["channel"] == "C0AUDIT"]
        assert len(audit) == 4 and bot.fake.paced_refusals == 0
        assert all(later - earlier >= 1.0 for earlier, later in zip(audit, audit[1:], strict=False))
        texts = [c.args["text"] for c in bot.fake.timed_calls("chat.postMessage") if c.args["channel"] == "C0AUDIT"]
        assert [t.split("`")[1] for t in texts] == ["e0", "e1", "e2", "e3"]  # in order within the channel


def _queue_audit_posts(bot: Bot, people: list[str]) -> None:
    """Four audit posts to the audit channel (``e0`` … ``e3``, in that order) and one DM to each of ``people``."""
    with bot.container.db.begin() as session:
        for n in range(4):
            outbox_store.enqueue(now=bot.clock.now(), kind="audit_post", recipient="C0AUDIT",
                                 payload={"event": f"e{n}", "actor": "UALICE"}, session=session)
        for user_id in people:
            outbox_store.enqueue(now=bot.clock.now(), kind="audit_post", recipient=user_id,
                                 payload={"event": "hello", "actor": "UALICE"}, session=session)


def _unsent(db: Database) -> int:
    with db.begin() as session:
        return outbox_store.unsent_outbox_count(session=session)


def test_a_429_to_one_channel_holds_that_channel_for_its_retry_after_and_no_other(db: Database) -> None:
    """Slack refuses a message to one channel with ``Retry-After: 30``: that channel's other messages are not
    sent into the same refusal (one call, not one per row) nor claimed while the channel is held; everyone
    else's go out at once; after the wait the held ones go out, once each and in order."""
    with slow_bot(db, 0.0) as bot:
        _queue_audit_posts(bot, GROUP[:3])
        bot.fake.rate_limit_channel("C0AUDIT", times=1, retry_after=30)
        sender = paced_outbox(bot)
        monotonic = [1000.0]  # the pacer's clock, moved by the test
        sender.pacer = ChannelPacer(monotonic=lambda: monotonic[0])

        def to(channel: str) -> list[str]:
            return [("failed " if c.failed else "") + c.args["text"].split("`")[1] for c in bot.fake.calls
                    if c.method == "chat.postMessage" and c.args.get("channel") == channel]

        try:
            assert sender.send_due() == 3  # everyone else's, at once
            assert to("C0AUDIT") == ["failed e0"]  # one refusal, not four
            assert all(to(user_id) == ["hello"] for user_id in GROUP[:3])
            bot.clock.advance(timedelta(seconds=31))  # the rows are due again, but the channel is held 20 s more
            monotonic[0] += 10
            assert sender.send_due() == 0
            assert to("C0AUDIT") == ["failed e0"]
            deadline = 100
            while _unsent(db) and deadline:
                monotonic[0] += 25 if deadline == 100 else 1.2
                bot.clock.advance(timedelta(seconds=2))
                sender.send_due()
                deadline -= 1
        finally:
            sender.close()
        assert to("C0AUDIT") == ["failed e0", "e0", "e1", "e2", "e3"]
        assert all(to(user_id) == ["hello"] for user_id in GROUP[:3])
