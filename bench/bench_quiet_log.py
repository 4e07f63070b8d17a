"""How many log lines an idle ``accessbot serve`` writes in a real minute, at INFO and at DEBUG.

Run: ``python bench/bench_quiet_log.py [--seconds 60]``. A real process in HTTP mode against the fake Slack, the
default tick (1 s), SQLite; then SIGTERM. Prints lines per level, and how long the stop took.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.bot.fixtures import CONFIG  # noqa: E402
from tests.bot.test_serve import free_port, wait_until_healthy  # noqa: E402
from tests.support.fake_slack import FakeSlack  # noqa: E402


def idle_minute(level: str, seconds: float) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        Path(tmp, "accessbot.yml").write_text(CONFIG)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ACCESSBOT_"))}
        env.update(SLACK_API_URL=fake.url, SLACK_BOT_TOKEN="xoxb-bench", SLACK_SIGNING_SECRET="bench",
                   ACCESSBOT_CONFIG=f"{tmp}/accessbot.yml", ACCESSBOT_DATABASE_URL=f"sqlite:///{tmp}/bot.db",
                   ACCESSBOT_LOG_LEVEL=level, PYTHONPATH=str(ROOT))
        port = free_port()
        log = Path(tmp, "serve.log")
        with log.open("wb") as output:  # a file, not a pipe: at DEBUG a pipe nobody reads would fill and block
            process = subprocess.Popen([sys.executable, "-m", "accessbot", "serve", "--http", "--host", "127.0.0.1",
                                        "--port", str(port)], cwd=tmp, env=env, stdout=output,
                                       stderr=subprocess.STDOUT)
        wait_until_healthy(f"http://127.0.0.1:{port}", process)
        time.sleep(seconds)  # the idle period being measured
        stopped = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        took = time.monotonic() - stopped
        return len(log.read_text().splitlines()), took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    for level in ("INFO", "DEBUG"):
        lines, took = idle_minute(level, args.seconds)
        print(f"{level:>5}: {lines} log lines in {args.seconds:.0f} s idle (start and stop included); "
              f"SIGTERM to exit {took:.2f} s")


if __name__ == "__main__":
    main()
