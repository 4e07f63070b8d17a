"""App Homes are republished after a change only for people who opened theirs lately (bot.slack.homes); what
the serving bot prepares after a start (bot.slack.app.warm_up)."""

from __future__ import annotations

import gc

from bot.lifecycle.requests import RequestInput
from bot.slack.app import outbox_sender
from bot.slack.directory import SlackDirectory
from bot.slack.homes import HomeViewers
from tests.handlers.conftest import Bot
from tests.handlers.test_e2e import BILLING


def _submit(bot: Bot, justification: str) -> int:
    alice = bot.container.directory.identity("UALICE", bot.clock.now())
    return bot.container.service.submit(RequestInput(alice, [BILLING], "read_only", duration_hours="1",
                                                     justification=justification)).request.id


def _published_to(bot: Bot) -> list[str]:
    return [str(c.get("user_id")) for c in bot.fake.calls_to("views.publish")]


def test_only_the_homes_people_look_at_are_republished(bot: Bot) -> None:
    clock = [0.0]
    viewers = HomeViewers(keep=3600, monotonic=lambda: clock[0])
    sender = outbox_sender(bot.container, bot.outbox.client, viewers=viewers, channel_interval=0)
    try:
        _submit(bot, "first")  # DMs dana and erin (approvers) and alice (requester)
        sender.send_due()
        assert bot.fake.calls_to("chat.postMessage")  # the notices went out
        assert _published_to(bot) == []  # nobody has their Home open

        viewers.middleware({"event": {"type": "app_home_opened", "user": "UDANA", "tab": "home"}}, lambda: None)
        viewers.middleware({"event": {"type": "app_home_opened", "user": "UERIN", "tab": "messages"}}, lambda: None)
        _submit(bot, "second")
        sender.send_due()
        assert _published_to(bot) == ["UDANA"]  # dana looked at her Home; erin only at the messages tab

        clock[0] = 3601.0  # a day without opening it (here: an hour)
        _submit(bot, "third")
        sender.send_due()
        assert _published_to(bot) == ["UDANA"]
    finally:
        sender.close()


def test_the_serving_bot_prepares_candidates_and_picker_before_the_first_request(bot: Bot) -> None:
    from bot.slack.app import warm_up
    from policy import picker

    directory = bot.container.directory
    assert isinstance(directory, SlackDirectory)
    warm_up(bot.container)
    prepared = directory._candidates  # built by the warm-up
    assert len(prepared) > 0 and directory.candidates(bot.clock.now()) is prepared  # the first request uses it
    assert picker._indexes.get(bot.container.policy.current.catalog) is not None
    # and moved out of the collector's way: a full collection no longer walks them
    tracked = {id(o) for o in gc.get_objects()}
    assert id(prepared.identities) not in tracked and id(prepared.identities[0]) not in tracked
    gc.unfreeze()
