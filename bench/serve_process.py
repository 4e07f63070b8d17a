"""A real ``accessbot serve --http`` process for the bench: a data set's config, a database, the fake Slack.

    with served(path, users=100, backend="sqlite") as bot:
        bot.healthy_after   # seconds from Popen to the first 200 of GET /healthz
        bot.rss_mb()        # VmRSS of the serve process now
        bot.restart()       # SIGTERM, then the same serve again on the same database: seconds to healthy

Everything is on loopback: the fake Slack (``tests/support/fake_slack.py``) runs in this process and holds the
data set's people (``U0000001`` / ``user1@example.com``), so the modal the bot opens can be read back and
submitted. PostgreSQL gets a fresh schema on ``$ACCESSBOT_TEST_POSTGRES_URL``, dropped afterwards.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

from tests.bot.worker_process import postgres_schema
from tests.support.fake_slack import FakeSlack

REPO = Path(__file__).resolve().parents[1]
SIGNING_SECRET = "bench-signing-secret"
START_TIMEOUT = 120.0  # the large config loads in seconds; minutes mean something is broken


class ServeFailed(RuntimeError):
    pass


@dataclass
class Served:
    url: str
    database_url: str
    process: subprocess.Popen[bytes]
    fake: FakeSlack
    healthy_after: float
    launch: Callable[[], tuple[subprocess.Popen[bytes], float]]

    def restart(self) -> float:
        """Stop the serve process (SIGTERM) and start it again on the same database; seconds to healthy."""
        _stop(self.process)
        self.process, self.healthy_after = self.launch()
        return self.healthy_after

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise ServeFailed("no VmRSS for the serve process")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthz(url: str) -> int:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as reply:  # noqa: S310 - loopback
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def postgres_url() -> str | None:
    return os.environ.get("ACCESSBOT_TEST_POSTGRES_URL") or None


@contextmanager
def _database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'accessbot.db'}"  # serve migrates it at start
        return
    base = postgres_url()
    if base is None:
        raise ServeFailed("ACCESSBOT_TEST_POSTGRES_URL is not set")
    with postgres_schema(base) as url:
        yield url


def _fake_slack(users: int) -> FakeSlack:
    fake = FakeSlack()
    for i in range(users):  # the data set's people (bench/datasets.py), so users.list matches the config
        fake.add_user(f"U{i:07d}", f"user{i}@example.com")
    return fake


@contextmanager
def served(config: Path, *, users: int, backend: str, log_to: Path | None = None,
           env_extra: dict[str, str] | None = None, slack_latency: float = 0.0) -> Iterator[Served]:
    """``accessbot serve --http`` on a free loopback port, healthy; stopped with SIGTERM (then killed).

    ``log_to``: keep the serve process's log there (at INFO) instead of in the temporary directory.
    ``slack_latency``: seconds the fake Slack takes to answer each Web API call (Slack's own: about 0.6 s)."""
    with tempfile.TemporaryDirectory(prefix="accessbot-serve-") as tmp, _database(backend, Path(tmp)) as db_url, \
            _fake_slack(users) as fake:
        fake.latency = slack_latency
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ACCESSBOT_"))}
        env.update(
            SLACK_API_URL=fake.url,
            SLACK_BOT_TOKEN="xoxb-bench",
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            ACCESSBOT_CONFIG=str(config),
            ACCESSBOT_DATABASE_URL=db_url,
            ACCESSBOT_ENCRYPTION_KEY=Fernet.generate_key().decode(),
            ACCESSBOT_LOG_LEVEL="INFO" if log_to else "WARNING",
            PYTHONPATH=str(REPO),
        )
        env.update(env_extra or {})
        log = log_to or Path(tmp) / "serve.log"

        def launch() -> tuple[subprocess.Popen[bytes], float]:
            with log.open("ab") as output:
                started = time.monotonic()
                process = subprocess.Popen(
                    [sys.executable, "-m", "bot.cli", "serve", "--http", "--host", "127.0.0.1", "--port", str(port)],
                    cwd=tmp, env=env, stdout=output, stderr=subprocess.STDOUT,
                )
            try:
                return process, _wait_healthy(url, process, started, log)
            except BaseException:
                _stop(process)
                raise

        log.write_bytes(b"")
        process, healthy_after = launch()
        bot = Served(url, db_url, process, fake, healthy_after, launch)
        try:
            yield bot
        finally:
            _stop(bot.process)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], started: float, log: Path) -> float:
    deadline = started + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServeFailed(f"serve exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if healthz(url) == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.02)
    raise ServeFailed(f"serve was not healthy within {START_TIMEOUT:.0f} s: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
