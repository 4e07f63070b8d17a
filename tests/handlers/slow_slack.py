"""A bot whose Slack answers every Web API call after `latency` seconds, with 60 people in the approver group.

Shared by the ack tests (test_slow_slack.py, test_rate_limits.py) and bench/bench_ack.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bot.slack.app import outbox_sender
from bot.slack.outbox import OutboxSender
from policy.picker import resource_option_id
from store.db import Database
from tests.bot.fixtures import CONFIG
from tests.handlers.conftest import SIGNING_SECRET, Bot, running_bot
from tests.handlers.test_e2e import multi_value
from tests.support.fake_slack import FakeSlack
from tests.support.slack_sender import SlackSender, input_values, select_value, text_value

APPROVERS = 60  # UDANA and UERIN (dba in accessbot.yml) and 58 members of the Slack user group `dba`
GROUP = [f"UAPPR{n:02d}" for n in range(APPROVERS - 2)]
SLOW_CONFIG = CONFIG.replace("directory:\n", "directory:\n  slack_usergroups: true\n", 1)
BILLING = "db/database/billing"


@contextmanager
def slow_bot(db: Database, latency: float) -> Iterator[Bot]:
    fake = FakeSlack()
    for user_id in GROUP:
        fake.add_user(user_id, f"{user_id.lower()}@example.com")
    fake.add_usergroup("S0DBA", "dba", GROUP)
    fake.latency = latency
    with running_bot(db, SLOW_CONFIG, fake=fake) as bot:
        yield bot


def timed_sender(bot: Bot) -> SlackSender:
    """A sender that returns as soon as the bot answers (the fixture's waits for the listeners too)."""
    return SlackSender(bot.url, SIGNING_SECRET, response_url_base=bot.fake.hooks_url)


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def request_values(duration: str = "2") -> dict[str, Any]:
    return input_values({
        "resource": multi_value(resource_option_id(BILLING)),
        "permission": select_value("read_only", "read_only"),
        "duration_hours": text_value(duration),
        "justification": text_value("INC-1 debugging"),
    })


def wait_until(done: Callable[[], bool], what: str, timeout: float) -> float:
    """Seconds until `done()` held; fails after `timeout`."""
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"no {what} within {timeout}s")
        time.sleep(0.02)
    return time.monotonic() - started


def approval_dms(fake: FakeSlack) -> dict[str, int]:
    """How many approval requests (messages with an Approve button) each channel got."""
    counts: dict[str, int] = {}
    for call in fake.timed_calls("chat.postMessage"):
        if '"approve"' in str(call.args.get("blocks")).replace("'", '"'):
            counts[call.args["channel"]] = counts.get(call.args["channel"], 0) + 1
    return counts


@contextmanager
def ticking(sender: OutboxSender, advance: Callable[[], None] | None = None) -> Iterator[OutboxSender]:
    """The outbox ticking on its own thread, as `accessbot serve` runs it (``advance`` moves a fake clock)."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            sender.send_due()
            if advance is not None:
                advance()
            stop.wait(0.05)

    thread = threading.Thread(target=run, name="outbox-tick", daemon=True)
    thread.start()
    try:
        yield sender
    finally:
        stop.set()
        thread.join(30)
        sender.close()


def paced_outbox(bot: Bot) -> OutboxSender:
    """The production outbox: one message per second per channel, 16 in parallel."""
    return outbox_sender(bot.container, bot.outbox.client)


def pick_billing(sender: SlackSender, view: dict[str, Any]) -> None:
    """Choose billing in the modal's resource picker, as Slack sends a ``multi_external_select`` choice."""
    sender.block_actions("UALICE", "resource", view=view, action_type="multi_external_select",
                         action={"selected_options": multi_value(resource_option_id(BILLING))["selected_options"]})
