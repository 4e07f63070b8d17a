"""``accessbot serve --http`` as a real process: the example config, the fake Slack, signed requests, SIGHUP.

The example config names secrets (``PROD_PG_DSN``, ``DEPLOY_HOOK_SECRET``) that are not set here: the bot still
starts, tells the audit channel which integrations are unavailable, and serves everything else.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_slack import FakeSlack
from tests.support.slack_sender import SlackSender

REPO = Path(__file__).resolve().parents[2]
SIGNING_SECRET = "serve-test-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 — loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"accessbot serve exited with {process.returncode}")
        try:
            if get(url + "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("accessbot serve did not answer /healthz in time")


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("UALICE", "alice@example.com")
        fake.add_user("USECOPS", "secops@example.com")
        yield fake


def start(tmp_path: Path, fake: FakeSlack, config: Path, port: int, **extra: str) -> subprocess.Popen[bytes]:
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "ACCESSBOT_", "PROD_PG_DSN", "DEPLOY_HOOK_SECRET"))
    }
    env.update(dict(
        SLACK_API_URL=fake.url,
        SLACK_BOT_TOKEN="xoxb-serve-test",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        ACCESSBOT_CONFIG=str(config),
        ACCESSBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'accessbot.db'}",
        ACCESSBOT_TICK_SECONDS="0.2",
        PYTHONPATH=str(REPO),
    ) | extra)
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--http", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.stdout is not None
    return process.stdout.read().decode(errors="replace")


def audit_texts(fake: FakeSlack) -> list[str]:
    return [c.get("text", "") for c in fake.calls_to("chat.postMessage") if c.get("channel") == "C0AUDIT"]


def test_serve_http_with_the_example_config(tmp_path: Path, fake: FakeSlack) -> None:
    config = tmp_path / "accessbot.yml"
    shutil.copy(REPO / "examples" / "accessbot.yml", config)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(tmp_path, fake, config, port)
    try:
        wait_until_healthy(url, process)
        status, metrics = get(url + "/metrics")
        assert status == 200 and "accessbot_http_requests" in metrics
        assert 'accessbot_grants{state="revoke_failed"} 0.0' in metrics and "accessbot_outbox_unsent" in metrics

        reply = SlackSender(url, SIGNING_SECRET, response_url_base=fake.hooks_url).command("UALICE", "help")
        assert reply.status == 200
        (answer,) = fake.wait_for("response_url")
        assert answer["response_type"] == "ephemeral" and "/access list" in answer["text"]

        forged = SlackSender(url, "not-the-secret", response_url_base=fake.hooks_url).command("UALICE", "help")
        assert forged.status == 401
        assert len(fake.calls_to("response_url")) == 1

        # the secrets the example names are not set: those integrations are unavailable, the bot says so
        texts = fake.wait_for("chat.postMessage", 2)
        unavailable = [t for t in audit_texts(fake) if "is unavailable" in t]
        assert any("prod-postgres" in t and "PROD_PG_DSN" in t for t in unavailable), texts
        assert any("deploy" in t and "DEPLOY_HOOK_SECRET" in t for t in unavailable), texts

        # a broken config sent with SIGHUP is refused and posted to the audit channel; the bot keeps serving
        config.write_text(config.read_text() + "\nnot_a_key: 1\n")
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while not any("refused" in t for t in audit_texts(fake)) and time.monotonic() < deadline:
            time.sleep(0.1)
        refused = [t for t in audit_texts(fake) if "refused" in t]
        assert refused and "not_a_key" in refused[0]
        assert get(url + "/healthz")[0] == 200
    finally:
        output = stop(process)
    assert process.returncode == 0, output
    assert "xoxb-serve-test" not in output and SIGNING_SECRET not in output


def test_serve_refuses_to_start_without_a_signing_secret(tmp_path: Path, fake: FakeSlack) -> None:
    process = start(tmp_path, fake, REPO / "examples" / "accessbot.yml", free_port(), SLACK_SIGNING_SECRET="")
    process.wait(timeout=30)
    output = stop(process)
    assert process.returncode == 2
    assert "SLACK_SIGNING_SECRET is required" in output


def test_serve_refuses_a_config_that_does_not_validate(tmp_path: Path, fake: FakeSlack) -> None:
    config = tmp_path / "accessbot.yml"
    config.write_text("flows:\n  - name: x\n    grant_for: -1h\n")
    process = start(tmp_path, fake, config, free_port())
    process.wait(timeout=30)
    output = stop(process)
    assert process.returncode == 2
    assert "does not validate" in output and "grant_for" in output
