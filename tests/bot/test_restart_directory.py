"""``accessbot serve`` restarted on a Slack that answers ``users.list`` slowly: the first start is healthy only
once it has read the workspace; the second is healthy while its read of the workspace is still waiting for Slack
(it serves from the snapshot the first start kept in the database) and opens a modal for someone it knows from
it; the read then finishes in the background. A real process, the fake Slack over HTTP."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.bot.fixtures import CONFIG
from tests.bot.test_serve import SIGNING_SECRET, free_port, start, stop, wait_until_healthy
from tests.support.fake_slack import FakeSlack
from tests.support.slack_sender import SlackSender

pytestmark = pytest.mark.slow
PAGE_SECONDS = 2.0  # Slack's answer to users.list (one page: 101 people)


def answered_by(fake: FakeSlack, moment: float) -> int:
    """users.list calls Slack had answered by ``moment`` (each is answered PAGE_SECONDS after it arrives)."""
    return sum(1 for c in fake.calls if c.method == "users.list" and c.at + PAGE_SECONDS <= moment)


def test_a_restart_serves_before_reading_slack_then_reads_it_in_the_background(tmp_path: Path) -> None:
    config = tmp_path / "accessbot.yml"
    config.write_text(CONFIG)
    with FakeSlack() as fake:
        fake.add_user("UALICE", "alice@example.com")
        for n in range(100):
            fake.add_user(f"U{n:05d}", f"person{n}@example.com")
        fake.method_latency["users.list"] = PAGE_SECONDS
        port = free_port()
        url = f"http://127.0.0.1:{port}"

        first = start(tmp_path, fake, config, port)
        try:
            wait_until_healthy(url, first)
            assert answered_by(fake, time.monotonic()) == 1  # no snapshot yet: Slack read before serving
        finally:
            stop(first)

        fake.clear()
        second = start(tmp_path, fake, config, port)
        try:
            wait_until_healthy(url, second)
            assert answered_by(fake, time.monotonic()) == 0  # serving while Slack is still being read
            sender = SlackSender(url, SIGNING_SECRET, response_url_base=fake.hooks_url)
            assert sender.command("UALICE", "").status == 200
            fake.wait_for("views.open")  # Alice, from the snapshot, gets her modal
            fake.wait_for("users.list", timeout=30)  # and the workspace is read again, in the background
        finally:
            output = stop(second)
    assert second.returncode == 0, output
