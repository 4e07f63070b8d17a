"""What ``accessbot serve`` writes to its log, as a real process: JSON lines with context, quiet when idle.

A "quiet minute" is measured in ticks, not wall time: the quiet test's bot ticks every 0.02 s, and 250 ticks are over
four minutes of ticking at the default rate (one a second); before, the scheduler alone wrote two lines per tick.
(``bench/quiet_log.py`` counts the lines of a real minute.)
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bot.fixtures import CONFIG
from tests.bot.test_serve import free_port, get, stop, wait_until_healthy
from tests.support.fake_slack import FakeSlack
from tests.support.slack_sender import SlackSender

REPO = Path(__file__).resolve().parents[2]
SECRET = "logging-test-secret"
pytestmark = pytest.mark.slow


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("UALICE", "alice@example.com")
        yield fake


def start(tmp_path: Path, fake: FakeSlack, port: int, **extra: str) -> subprocess.Popen[bytes]:
    (tmp_path / "accessbot.yml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ACCESSBOT_"))}
    env.update(
        SLACK_API_URL=fake.url, SLACK_BOT_TOKEN="xoxb-logging-test", SLACK_SIGNING_SECRET=SECRET,
        ACCESSBOT_CONFIG=str(tmp_path / "accessbot.yml"),
        ACCESSBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'accessbot.db'}", ACCESSBOT_TICK_SECONDS="0.05",
        PYTHONPATH=str(REPO),
    )
    env.update(extra)
    return subprocess.Popen(
        [sys.executable, "-m", "accessbot", "serve", "--http", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def wait_ticks(url: str, ticks: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metrics = get(url + "/metrics")[1]
        found = re.search(r'accessbot_scheduler_ticks_total\{scheduler="due_work"\} ([0-9.e+]+)', metrics)
        if found and float(found.group(1)) >= ticks:
            return
        time.sleep(0.2)
    raise AssertionError(f"the scheduler did not tick {ticks} times within {timeout} s")


def test_json_lines_with_context_and_a_quiet_idle_log(tmp_path: Path, fake: FakeSlack) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(tmp_path, fake, port, ACCESSBOT_LOG_FORMAT="json", ACCESSBOT_LOG_LEVEL="info",
                    ACCESSBOT_TICK_SECONDS="0.02")
    try:
        wait_until_healthy(url, process)
        wait_ticks(url, 250, timeout=60)  # over four quiet minutes' worth of ticks

        sender = SlackSender(url, SECRET, response_url_base=fake.hooks_url)
        assert sender.command("UALICE", "revoke 12").status == 200
        fake.wait_for("response_url")
        forger = SlackSender(url, "not-the-secret", response_url_base=fake.hooks_url)
        for _ in range(5):
            assert forger.command("UALICE", "help with a body that must not be logged").status == 401
    finally:
        output = stop(process)
    assert process.returncode == 0, output
    records: list[dict[str, Any]] = [json.loads(line) for line in output.splitlines()]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records), records

    handled = [r for r in records if r["message"].startswith("handled")]
    quiet = records[:records.index(handled[0])]
    assert len(quiet) < 5, quiet  # start-up included; no per-tick lines
    assert not any(r["logger"].startswith("apscheduler") for r in records)
    assert not any("will be unused" in r["message"] for r in records)

    (command,) = handled
    assert command["user_id"] == "UALICE" and command["action"] == "/access revoke"
    assert command["request_id"] == "12" and command["delivery_id"]

    refused = [r for r in records if "refused a Slack request" in r["message"]]
    assert len(refused) == 1, refused  # five forgeries, one line a minute
    assert "signature does not match" in refused[0]["message"]
    assert "must not be logged" not in output and fake.hooks_url not in output and "response_url" not in output


def test_debug_shows_the_scheduler_ticks(tmp_path: Path, fake: FakeSlack) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(tmp_path, fake, port, ACCESSBOT_LOG_LEVEL="DEBUG")
    try:
        wait_until_healthy(url, process)
        wait_ticks(url, 5, timeout=30)
        process.send_signal(signal.SIGTERM)
    finally:
        output = stop(process)
    assert process.returncode == 0, output
    assert len(re.findall(r"INFO apscheduler\.executors\.default: Running job", output)) >= 5, output[-2000:]
