"""``accessbot serve`` restarted on a Slack that answers ``users.list`` slowly: the second start is healthy and
opens a modal before it asks Slack for a single page (it serves from the snapshot the first start kept in the
database), then reads the workspace again in the background. A real process, the fake Slack over HTTP."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.bot.fixtures import CONFIG
from tests.bot.test_serve import SIGNING_SECRET, free_port, start, stop, wait_until_healthy
from tests.support.fake_slack import FakeSlack
from tests.support.slack_sender import SlackSender

pytestmark = pytest.mark.slow
PAGE_SECONDS = 0.5  # each users.list page; 300 people are two pages of 200


def test_a_restart_serves_before_reading_slack_then_reads_it_in_the_background(tmp_path: Path) -> None:
    config = tmp_path / "accessbot.yml"
    config.write_text(CONFIG)
    with FakeSlack() as fake:
        fake.add_user("UALICE", "alice@example.com")
        for n in range(300):
            fake.add_user(f"U{n:05d}", f"person{n}@example.com")
        fake.method_latency["users.list"] = PAGE_SECONDS
        port = free_port()
        url = f"http://127.0.0.1:{port}"

        first = start(tmp_path, fake, config, port)
        try:
            wait_until_healthy(url, first)
            assert len(fake.calls_to("users.list")) == 2  # no snapshot yet: both pages read before serving
        finally:
            stop(first)

        fake.clear()
        second = start(tmp_path, fake, config, port)
        try:
            wait_until_healthy(url, second)
            healthy_at = time.monotonic()
            sender = SlackSender(url, SIGNING_SECRET, response_url_base=fake.hooks_url)
            assert sender.command("UALICE", "").status == 200
            fake.wait_for("views.open")  # Alice, from the snapshot, gets her modal
            assert not [c for c in fake.calls if c.method == "users.list" and c.at < healthy_at]
            fake.wait_for("users.list", count=2, timeout=30)  # then the workspace is read again, in the background
        finally:
            output = stop(second)
    assert second.returncode == 0, output
