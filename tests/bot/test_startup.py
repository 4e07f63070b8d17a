"""Start-up failures of ``accessbot serve``, each as a real process: one clear line on stderr, exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.bot.fixtures import CONFIG
from tests.support.fake_slack import FakeSlack

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def refuse(method: str, error: str) -> Callable[[FakeSlack], None]:
    """Slack answers ``method`` with ``{"ok": false, "error": error}`` (HTTP 200), as it does for a bad token."""
    return lambda fake: fake.fail_next(method, error=error, status=200, retry_after=None)


@dataclass
class Case:
    description: str
    env: dict[str, str]
    says: str
    slack: Callable[[FakeSlack], None] = lambda fake: None
    args: list[str] = field(default_factory=lambda: ["--http"])
    never_shows: str = "xoxb-startup-test"


CASES = [
    Case("missing bot token", {"SLACK_BOT_TOKEN": ""}, "SLACK_BOT_TOKEN is not set"),
    Case("a user token as bot token", {"SLACK_BOT_TOKEN": "xoxp-1-2-3"},
         "SLACK_BOT_TOKEN must be the app's bot token (xoxb-…), not one starting 'xoxp-'", never_shows="xoxp-1-2-3"),
    Case("invalid bot token", {}, "Slack refused SLACK_BOT_TOKEN (auth.test: invalid_auth)",
         slack=refuse("auth.test", "invalid_auth")),
    Case("app token of the wrong kind", {"SLACK_APP_TOKEN": "xoxb-not-an-app-token"},
         "SLACK_APP_TOKEN must be an app-level token (xapp-…", args=[], never_shows="xoxb-not-an-app-token"),
    Case("app token Slack refuses", {"SLACK_APP_TOKEN": "xapp-revoked"},
         "Slack refused SLACK_APP_TOKEN (apps.connections.open: invalid_auth)", args=[],
         slack=refuse("apps.connections.open", "invalid_auth"), never_shows="xapp-revoked"),
    Case("no signing secret in HTTP mode", {"SLACK_SIGNING_SECRET": ""}, "SLACK_SIGNING_SECRET is required"),
    Case("unreachable PostgreSQL", {"ACCESSBOT_DATABASE_URL": "postgresql+psycopg://bot:pw-secret@127.0.0.1:1/bot"},
         "cannot reach the database at postgresql+psycopg://bot:***@127.0.0.1:1/bot", never_shows="pw-secret"),
    Case("SQLite in a directory that does not exist",
         {"ACCESSBOT_DATABASE_URL": "sqlite:////nonexistent-accessbot-dir/accessbot.db"},
         "cannot reach the database at sqlite:////nonexistent-accessbot-dir/accessbot.db"),
    Case("wrong URL scheme", {"ACCESSBOT_DATABASE_URL": "mysql://bot:pw-secret@db/bot"},
         "ACCESSBOT_DATABASE_URL must start with sqlite:/// or postgresql+psycopg:// (got mysql://bot:***@db/bot)",
         never_shows="pw-secret"),
    Case("postgres:// (no driver)", {"ACCESSBOT_DATABASE_URL": "postgres://db/bot"},
         "ACCESSBOT_DATABASE_URL must start with sqlite:/// or postgresql+psycopg://"),
    Case("missing config", {"ACCESSBOT_CONFIG": "/nonexistent-accessbot-dir/accessbot.yml"},
         "the config file /nonexistent-accessbot-dir/accessbot.yml does not exist (set ACCESSBOT_CONFIG"),
    Case("invalid config", {"ACCESSBOT_CONFIG": "{tmp}/broken.yml"},
         "broken.yml does not validate: line 3: flows[0].requestors.conditions: required key is missing; line 3: "
         "flows[0].targets: a list: List should have at least 1 item after validation, not 0; line 3: "
         "flows[0].grant_for: a duration must be positive, got '-1h'; `accessbot check-config "),
    Case("invalid setting", {"ACCESSBOT_TICK_SECONDS": "0"}, "ACCESSBOT_TICK_SECONDS: Input should be greater than 0"),
    Case("unknown log format", {"ACCESSBOT_LOG_FORMAT": "xml"},
         "ACCESSBOT_LOG_FORMAT: Input should be 'text' or 'json'"),
]


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.mark.parametrize("case", CASES, ids=[c.description for c in CASES])
def test_a_start_up_failure_is_one_clear_line_and_exit_code_2(case: Case, tmp_path: Path, fake: FakeSlack) -> None:
    (tmp_path / "accessbot.yml").write_text(CONFIG)
    (tmp_path / "broken.yml").write_text(
        "integrations: []\nflows:\n  - {name: x, grant_for: -1h, requestors: {}, targets: []}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ACCESSBOT_"))}
    env.update(
        SLACK_API_URL=fake.url, SLACK_BOT_TOKEN="xoxb-startup-test", SLACK_SIGNING_SECRET="startup-secret",
        ACCESSBOT_CONFIG=str(tmp_path / "accessbot.yml"),
        ACCESSBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'accessbot.db'}", PYTHONPATH=str(REPO),
    )
    env.update({k: v.replace("{tmp}", str(tmp_path)) for k, v in case.env.items()})
    case.slack(fake)
    done = subprocess.run([sys.executable, "-m", "accessbot", "serve", *case.args, "--port", "0"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert case.says in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert case.never_shows not in done.stderr


def test_the_checks_hand_the_bot_the_config_they_validated(tmp_path: Path, fake: FakeSlack) -> None:
    from bot.settings import Settings
    from bot.slack.app import slack_client
    from bot.startup import check_before_start

    path = tmp_path / "accessbot.yml"
    path.write_text(CONFIG)
    os.utime(path, (5, 5))
    settings = Settings(SLACK_API_URL=fake.url, SLACK_BOT_TOKEN="xoxb-startup-test",  # type: ignore[call-arg]
                        SLACK_SIGNING_SECRET="startup-secret", ACCESSBOT_CONFIG=str(path),
                        ACCESSBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'accessbot.db'}")
    checked = check_before_start(settings, socket_mode=False, client=slack_client(settings))
    assert {f.name for f in checked.config.flows} == {"read-any", "write-prod", "staging-auto"}
    assert checked.config_mtime == 5  # as it was before the file was read: a later change is reloaded
    assert checked.auth.get("ok") is True
