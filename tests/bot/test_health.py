"""Socket Mode with ``ACCESSBOT_HEALTH_PORT``: ``/healthz`` reports database, scheduler and Slack connection.

A real ``accessbot serve`` against the fake Slack and the fake Socket Mode server. The database is made
unreachable the way a lost volume is: its directory goes away (SQLite can then open nothing), and comes back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bot.fixtures import CONFIG
from tests.bot.test_serve import free_port, get, stop
from tests.support.fake_slack import FakeSlack
from tests.support.fake_socket_mode import FakeSocketMode

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("UALICE", "alice@example.com")
        yield fake


def health(url: str) -> tuple[int, dict[str, Any]]:
    try:
        status, body = get(url + "/healthz")
    except OSError:
        return 0, {}
    return status, json.loads(body)


def wait_health(url: str, process: subprocess.Popen[bytes], want: int, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: tuple[int, dict[str, Any]] = (0, {})
    while time.monotonic() < deadline:
        assert process.poll() is None, f"accessbot serve exited with {process.returncode}"
        seen = health(url)
        if seen[0] == want:
            return seen[1]
        time.sleep(0.1)
    raise AssertionError(f"/healthz did not answer {want} within {timeout} s; last: {seen}")


def test_socket_mode_health_follows_the_database_and_the_slack_connection(tmp_path: Path, fake: FakeSlack) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "accessbot.yml").write_text(CONFIG)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ACCESSBOT_"))}
    env.update(
        SLACK_API_URL=fake.url, SLACK_BOT_TOKEN="xoxb-health-test", SLACK_APP_TOKEN="xapp-health-test",
        ACCESSBOT_CONFIG=str(tmp_path / "accessbot.yml"), ACCESSBOT_DATABASE_URL=f"sqlite:///{data / 'bot.db'}",
        ACCESSBOT_TICK_SECONDS="0.2", ACCESSBOT_HEALTH_PORT=str(port), PYTHONPATH=str(REPO),
    )
    with FakeSocketMode() as socket_mode:
        fake.socket_mode_url = socket_mode.url
        process = subprocess.Popen([sys.executable, "-m", "accessbot", "serve", "--host", "127.0.0.1"], cwd=tmp_path,
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            socket_mode.wait_connected(timeout=30)
            report = wait_health(url, process, 200)
            assert report == {"status": "ok", "checks": {"database": "ok", "scheduler": "ok", "slack": "ok"}}
            status, metrics = get(url + "/metrics")
            assert status == 200
            assert 'accessbot_grants{state="active"} 0.0' in metrics
            assert 'accessbot_slack_api_calls_total{method="auth.test",outcome="ok"} 1.0' in metrics
            assert 'accessbot_slack_api_calls_total{method="apps.connections.open",outcome="ok"}' in metrics
            assert 'accessbot_scheduler_ticks_total{scheduler="due_work"}' in metrics
            assert get(url + "/slack/events")[0] == 404  # only health and metrics on this port

            data.rename(tmp_path / "data.gone")  # the database's volume is gone
            report = wait_health(url, process, 503)
            assert report["status"] == "unhealthy"
            assert report["checks"]["database"].startswith("unreachable: "), report
            assert report["checks"]["slack"] == "ok"

            (tmp_path / "data.gone").rename(data)  # and back
            assert wait_health(url, process, 200)["checks"]["database"] == "ok"

            socket_mode.stop()  # Slack's side of the connection goes away
            report = wait_health(url, process, 503)
            assert report["checks"]["slack"] == "disconnected from Slack"
            assert report["checks"]["database"] == "ok"
        finally:
            output = stop(process)
    assert process.returncode == 0, output
    assert "Socket Mode (GET /healthz, GET /metrics on 127.0.0.1:" in output
