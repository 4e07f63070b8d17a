"""``accessbot serve`` in Socket Mode as a real process: the example config, the fake Slack, a fake Socket Mode server.

With ``SLACK_APP_TOKEN`` set (and no ``--http``) the bot asks ``apps.connections.open`` for a WebSocket URL with
the app-level token, connects, gets Slack's ``hello`` and then answers envelopes: each is acknowledged with its
envelope id, and what the user sees goes through the Web API and the response URL as in HTTP mode. No signing
secret is needed: Slack authenticates the connection, not each request.
"""

from __future__ import annotations

import ctypes
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from tests.bot.test_serve import stop
from tests.support.fake_slack import FakeSlack
from tests.support.fake_socket_mode import FakeSocketMode

REPO = Path(__file__).resolve().parents[2]
BOT_TOKEN = "xoxb-socket-test"
APP_TOKEN = "xapp-test"
WAIT = 10.0  # seconds for the bot process to answer (generous: CI machines are slow)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("UALICE", "alice@example.com")
        fake.add_user("UDANA", "dana@example.com")
        fake.add_user("USECOPS", "secops@example.com")
        yield fake


@pytest.fixture
def socket_mode(fake: FakeSlack) -> Iterator[FakeSocketMode]:
    with FakeSocketMode() as socket_mode:
        fake.socket_mode_url = socket_mode.url
        yield socket_mode


def start(tmp_path: Path, fake: FakeSlack, config: Path) -> subprocess.Popen[bytes]:
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "ACCESSBOT_", "PROD_PG_DSN", "DEPLOY_HOOK_SECRET"))
    }
    env.update(
        SLACK_API_URL=fake.url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        ACCESSBOT_CONFIG=str(config),
        ACCESSBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'accessbot.db'}",
        ACCESSBOT_TICK_SECONDS="0.2",
        PYTHONPATH=str(REPO),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def connected(socket_mode: FakeSocketMode, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Waits for the bot's first connection (it migrates the database and discovers resources first)."""
    deadline = time.monotonic() + timeout
    while not any(c.hello_sent for c in socket_mode.connections):
        if process.poll() is not None:
            raise AssertionError(f"accessbot serve exited with {process.returncode}")
        if time.monotonic() >= deadline:
            raise AssertionError("accessbot serve did not open a Socket Mode connection in time")
        time.sleep(0.05)


def home_publishes(fake: FakeSlack, user_id: str) -> list[dict[str, Any]]:
    return [c for c in fake.calls_to("views.publish") if c.get("user_id") == user_id]


def poll(done: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            raise AssertionError(f"no {what} within {timeout}s")
        time.sleep(0.02)


def test_serve_socket_mode_with_the_example_config(
    tmp_path: Path, fake: FakeSlack, socket_mode: FakeSocketMode
) -> None:
    config = tmp_path / "accessbot.yml"
    shutil.copy(REPO / "examples" / "accessbot.yml", config)
    process = start(tmp_path, fake, config)
    try:
        connected(socket_mode, process)
        opened = [c for c in fake.calls if c.method == "apps.connections.open"]
        assert [(c.token, c.failed) for c in opened] == [(APP_TOKEN, False)] * 2  # the start-up check, the link
        link = socket_mode.current
        assert link.path.startswith("/link/?ticket=")

        # a slash command: acknowledged with its envelope id, the help reaches the user through the response URL
        envelope_id = socket_mode.slash_command("UALICE", "help", response_url=f"{fake.hooks_url}commands/T0TEST/1")
        # (an empty ack, no payload: the answer goes to the response URL, so the user sees it once)
        assert socket_mode.wait_for_ack(envelope_id, WAIT) == {"envelope_id": envelope_id}
        (answer,) = fake.wait_for("response_url", timeout=WAIT)
        assert answer["_path"] == "/hooks/commands/T0TEST/1"
        assert answer["response_type"] == "ephemeral" and "/access list" in answer["text"]

        # App Home: the bot publishes the user's home tab. Dana, not Alice: the example's automatic flow puts the
        # on-call SRE (Alice or Bob, by the week) in a group, and the outbox then republishes their home tab.
        envelope_id = socket_mode.event({"type": "app_home_opened", "user": "UDANA", "channel": "D0DANA",
                                         "tab": "home"})
        assert socket_mode.wait_for_ack(envelope_id, WAIT) == {"envelope_id": envelope_id}
        poll(lambda: bool(home_publishes(fake, "UDANA")), "views.publish for UDANA", WAIT)
        home = fake.home_view("UDANA")
        assert home is not None and home["type"] == "home"

        # a click on the home tab's "New request": an interactive envelope; the bot opens the request modal
        trigger_id = "1000000000001.1000000001.socketmode"
        envelope_id = socket_mode.interactive({
            "type": "block_actions",
            "user": {"id": "UDANA", "username": "udana", "name": "udana", "team_id": "T0TEST"},
            "trigger_id": trigger_id,
            "container": {"type": "view", "view_id": home["id"]},
            "view": home,
            "actions": [{"type": "button", "action_id": "new_request", "block_id": "home_actions",
                         "text": {"type": "plain_text", "text": "New request"}, "action_ts": f"{time.time():.6f}"}],
        })
        assert socket_mode.wait_for_ack(envelope_id, WAIT) == {"envelope_id": envelope_id}
        (modal,) = fake.wait_for("views.open", timeout=WAIT)
        assert modal["trigger_id"] == trigger_id and modal["view"]["type"] == "modal"

        # Slack refreshes connections: after `disconnect` the bot opens a new one and keeps answering
        socket_mode.disconnect()
        socket_mode.wait_connected(count=2, timeout=15)
        assert [c.token for c in fake.calls if c.method == "apps.connections.open"] == [APP_TOKEN] * 3
        envelope_id = socket_mode.slash_command("UALICE", "help", response_url=f"{fake.hooks_url}commands/T0TEST/2")
        assert socket_mode.wait_for_ack(envelope_id, WAIT) == {"envelope_id": envelope_id}
        fake.wait_for("response_url", 2, timeout=WAIT)
    finally:
        output = stop(process)
    assert process.returncode == 0, output
    assert "Socket Mode" in output and "stopped: all work in progress finished" in output, output
    assert BOT_TOKEN not in output and APP_TOKEN not in output


def test_the_fakes_speak_socket_mode_to_slack_sdk(fake: FakeSlack, socket_mode: FakeSocketMode) -> None:
    """slack_sdk's own Socket Mode client against the fakes, in process: the token check, hello, envelopes, acks."""
    with pytest.raises(SlackApiError) as refused:
        WebClient(token=BOT_TOKEN, base_url=fake.url).apps_connections_open(app_token=BOT_TOKEN)
    assert refused.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as wrong_token:
        WebClient(token=APP_TOKEN, base_url=fake.url).auth_test()
    assert wrong_token.value.response["error"] == "not_allowed_token_type"

    seen: list[SocketModeRequest] = []

    def listener(client: SocketModeClient, request: SocketModeRequest) -> None:
        seen.append(request)
        payload: dict[str, Any] | None = {"text": "pong"} if request.accepts_response_payload else None
        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id, payload=payload))

    client = SocketModeClient(app_token=APP_TOKEN, web_client=WebClient(token=BOT_TOKEN, base_url=fake.url),
                              auto_reconnect_enabled=False)
    client.socket_mode_request_listeners.append(listener)  # type: ignore[arg-type]
    try:
        client.connect()
        socket_mode.wait_connected()
        command = socket_mode.slash_command("UALICE", "ping", response_url=fake.hooks_url + "commands/1")
        assert socket_mode.wait_for_ack(command) == {"envelope_id": command, "payload": {"text": "pong"}}
        event = socket_mode.event({"type": "app_home_opened", "user": "UALICE", "tab": "home"}, retry_attempt=1)
        assert socket_mode.wait_for_ack(event) == {"envelope_id": event}
    finally:
        socket_mode.stop()  # closing from Slack's side first spares the client's 3 s read timeout
        client.close()
    assert [(r.type, r.retry_attempt) for r in seen] == [("slash_commands", None), ("events_api", 1)]
    assert seen[0].payload["text"] == "ping" and seen[1].payload["event"]["type"] == "app_home_opened"


def _tgkill(pid: int, tid: int, signum: int) -> None:
    """Send ``signum`` to one thread of another process (Linux ``tgkill``): the kernel may do the same with SIGTERM."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(SYS_TGKILL[platform.machine()], pid, tid, signum) != 0:
        raise OSError(ctypes.get_errno(), "tgkill failed")


SYS_TGKILL = {"x86_64": 234, "aarch64": 131}


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.machine() not in SYS_TGKILL,
                    reason="tgkill is Linux's")
def test_sigterm_taken_by_another_thread_still_stops_the_bot(
    tmp_path: Path, fake: FakeSlack, socket_mode: FakeSocketMode,
) -> None:
    """Python runs signal handlers in the main thread; a SIGTERM the kernel hands to a listener or scheduler thread
    must still stop ``accessbot serve`` (under systemd that is how `systemctl stop` ends the bot)."""
    config = tmp_path / "accessbot.yml"
    shutil.copy(REPO / "examples" / "accessbot.yml", config)
    process = start(tmp_path, fake, config)
    try:
        connected(socket_mode, process)
        threads = sorted(int(t) for t in os.listdir(f"/proc/{process.pid}/task") if int(t) != process.pid)
        assert threads, "serve runs threads besides the main one"
        _tgkill(process.pid, threads[-1], signal.SIGTERM)
        try:
            process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            raise AssertionError("a SIGTERM taken by another thread did not stop the bot") from None
    finally:
        output = stop(process)
    assert process.returncode == 0, output
    assert "SIGTERM received: stopping" in output
