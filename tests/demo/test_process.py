"""``accessbot demo`` as a real process: it serves the page within 5 s, from any directory, and connects nowhere
but loopback (an audit hook in the process fails any other ``socket.connect`` and records the attempt)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

# Run the CLI with an audit hook that refuses (and reports on stderr) every connection off loopback.
GUARDED = """
import ipaddress, sys
def guard(event, args):
    if event == "socket.connect":
        address = args[1]
        host = address[0] if isinstance(address, tuple) else str(address)
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            print(f"OUTBOUND CONNECTION to {address}", file=sys.stderr, flush=True)
            raise PermissionError(f"the demo must not connect to {address}")
    if event == "socket.getaddrinfo" and args[0] not in ("127.0.0.1", "localhost", None):
        print(f"OUTBOUND LOOKUP of {args[0]}", file=sys.stderr, flush=True)
sys.addaudithook(guard)
from bot.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_accessbot_demo_serves_the_page_within_5_seconds_and_connects_nowhere(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ACCESSBOT_"))}
    env["PYTHONPATH"] = str(ROOT)
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-c", GUARDED, "demo", "--port", str(port)], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    try:
        page = b""
        while time.monotonic() - started < 5.0 and process.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=1) as answer:
                    page = answer.read()
                with urllib.request.urlopen(f"{url}demo/state?user=UALICE", timeout=5) as answer:
                    ready = answer.status == 200
                if ready:
                    break
            except OSError:
                time.sleep(0.05)
        elapsed = time.monotonic() - started
        assert b"accessbot demo" in page, f"no page after {elapsed:.1f} s"
        assert elapsed < 5.0
        # the whole path once: a command reaches the bot, the bot calls the demo's Web API, a connector runs
        body = json.dumps({"user": "UALICE", "type": "command", "text": "/access list"}).encode()
        request = urllib.request.Request(f"{url}demo/act", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
        deadline = time.monotonic() + 10
        while True:
            with urllib.request.urlopen(f"{url}demo/state?user=UALICE", timeout=10) as answer:
                state = json.loads(answer.read())
            if any(c["ephemerals"] for c in state["channels"]) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert any("You have no requests yet" in e["text"] for c in state["channels"] for e in c["ephemerals"])
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert f"open {url}" in out.decode()
    assert "OUTBOUND" not in err.decode(), err.decode()
    assert not list(tmp_path.iterdir()), "the demo writes nothing into the directory it was started from"
    print(f"accessbot demo served the page {elapsed:.2f} s after start")


def test_accessbot_demo_refuses_a_config_that_does_not_validate(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("flows: [{name: x, grant_for: forever}]\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "bot.cli", "demo", "--config", str(bad), "--port", "0"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "bad.yml" in result.stderr and "Traceback" not in result.stderr
