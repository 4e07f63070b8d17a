"""What a team deploys with: ``--version``, ``python -m accessbot``, ``db current|history|downgrade``, the ``.env``
beside the config, the systemd unit (``systemd-analyze verify`` where it exists), LICENSE and metadata."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from bot.cli import main
from bot.settings import Settings
from store.db import alembic_config

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ACCESSBOT_"))}
    return subprocess.run([sys.executable, "-m", "accessbot", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**base, "PYTHONPATH": str(ROOT), **(env or {})})


def test_python_m_accessbot_is_the_command_line() -> None:
    done = run("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: accessbot") and "serve" in done.stdout and "--version" in done.stdout
    done = run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"accessbot {version('accessbot')}"


def test_db_current_history_and_downgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ACCESSBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'bot.db'}")
    monkeypatch.setenv("ACCESSBOT_CONFIG", str(tmp_path / "accessbot.yml"))
    assert main(["db", "current"]) == 0
    assert "no migration applied" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    revisions = list(ScriptDirectory.from_config(alembic_config()).walk_revisions())  # newest first
    head = revisions[0]
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out.strip() == f"{head.revision} (head)"
    assert main(["db", "history"]) == 0
    history = capsys.readouterr().out.strip().splitlines()
    assert history[0].startswith(f"{head.down_revision} -> {head.revision} (head), ")
    assert history[-1] == "<base> -> 0001, initial schema" and len(history) == len(revisions)

    assert main(["db", "downgrade", "nonsense"]) == 1
    assert "cannot downgrade to 'nonsense': Can't locate revision identified by 'nonsense'" in capsys.readouterr().err
    assert main(["db", "downgrade", "base"]) == 0
    assert capsys.readouterr().out.strip() == "database is at base (no migration applied)"
    assert main(["db", "current"]) == 0
    assert "no migration applied" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0  # and back up: the downgrade left a database the upgrade can take


def test_db_commands_on_an_unreachable_database_say_so_in_one_line() -> None:
    done = run("db", "current", env={"ACCESSBOT_DATABASE_URL": "postgresql+psycopg://bot:pw@127.0.0.1:1/bot"})
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: cannot reach the database at postgresql+psycopg://bot:***@127.0.0.1:1/bot: ")


def test_the_env_file_beside_the_config_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "accessbot.yml").write_text("flows: []\n")
    (conf / ".env").write_text("ACCESSBOT_DATABASE_URL=sqlite:////var/lib/accessbot/bot.db\nSLACK_BOT_TOKEN=xoxb-env\n"
                               "ACCESSBOT_LOG_FORMAT=json\n")
    (tmp_path / ".env").write_text("ACCESSBOT_LOG_LEVEL=DEBUG\n")  # the working directory's: not read
    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith(("SLACK_", "ACCESSBOT_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ACCESSBOT_CONFIG", str(conf / "accessbot.yml"))
    monkeypatch.setenv("ACCESSBOT_LOG_FORMAT", "text")  # the environment wins over the file
    settings = Settings.load()
    assert settings.database_url == "sqlite:////var/lib/accessbot/bot.db"
    assert settings.slack_bot_token is not None and settings.slack_bot_token.get_secret_value() == "xoxb-env"
    assert settings.log_format == "text" and settings.log_level == "INFO"


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze, script = shutil.which("systemd-analyze"), shutil.which("accessbot")
    if analyze is None or script is None:
        pytest.skip("needs systemd-analyze and an installed accessbot script")
    unit = (ROOT / "deploy" / "accessbot.service").read_text()
    for setting in ("DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=accessbot", "NoNewPrivileges=yes"):
        assert setting in unit.splitlines()
    # verify checks that ExecStart exists: point it at this machine's accessbot instead of /opt/accessbot/venv
    (tmp_path / "accessbot.service").write_text(unit.replace("/opt/accessbot/venv/bin/accessbot", script))
    done = subprocess.run([analyze, "verify", str(tmp_path / "accessbot.service")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and not done.stderr.strip() and not done.stdout.strip(), done.stderr


def test_license_and_metadata() -> None:
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "Apache-2.0"}
    assert "License :: OSI Approved :: Apache Software License" in project["classifiers"]
    assert {"Documentation", "Source", "Issues"} <= set(project["urls"])
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile and "\nUSER accessbot\n" in dockerfile
    assert "python -m pip install" in dockerfile and "python -m pip install" in (ROOT / ".ci" / "run").read_text()
