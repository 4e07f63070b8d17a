"""Labels are visible: ``/access flows`` shows them and ``/access flows LABEL`` filters (signed HTTP), and
``check-config`` and ``explain`` print them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from store.db import Database
from tests.bot.fixtures import CONFIG
from tests.handlers.conftest import Bot, running_bot

LABELLED = CONFIG.replace(
    "  - name: read-any\n", "  - name: read-any\n    labels: [db, Read-Only]\n"
).replace(
    "  - name: write-prod\n", "  - name: write-prod\n    labels: [db, prod]\n"
)


@pytest.fixture
def bot(db: Database) -> Iterator[Bot]:
    with running_bot(db, LABELLED) as running:
        yield running


def flows_reply(bot: Bot, text: str) -> str:
    bot.fake.clear()
    reply = bot.sender.command("UALICE", text)
    assert reply.status == 200, reply.text
    (answer,) = bot.fake.calls_to("response_url")
    assert answer.get("response_type") == "ephemeral"
    return str(answer["text"])


def test_access_flows_shows_each_flows_labels(bot: Bot) -> None:
    lines = {line.split("*")[1]: line for line in flows_reply(bot, "flows").splitlines()}
    assert set(lines) == {"read-any", "write-prod", "staging-auto"}
    assert lines["read-any"].endswith("labels: db, Read-Only") and lines["write-prod"].endswith("labels: db, prod")
    assert "labels" not in lines["staging-auto"]


def test_access_flows_label_filters_case_insensitively(bot: Bot) -> None:
    assert [line.split("*")[1] for line in flows_reply(bot, "flows prod").splitlines()] == ["write-prod"]
    assert [line.split("*")[1] for line in flows_reply(bot, "flows READ-ONLY").splitlines()] == ["read-any"]
    assert len(flows_reply(bot, "flows db").splitlines()) == 2


def test_an_unknown_label_says_which_labels_exist(bot: Bot) -> None:
    text = flows_reply(bot, "flows billing")
    assert "None of your flows has the label `billing`" in text
    assert "`db`, `prod`, `Read-Only`" in text


def test_check_config_and_explain_print_the_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "accessbot.yml"
    path.write_text(LABELLED)
    assert main(["check-config", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert next(line for line in lines if "read-any:" in line).endswith("[labels: db, Read-Only]")
    assert next(line for line in lines if "write-prod:" in line).endswith("[labels: db, prod]")
    assert "labels" not in next(line for line in lines if "staging-auto:" in line)
    assert main(["explain", "--user", "alice@example.com", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert next(line for line in out.splitlines() if line.startswith("flow read-any")).endswith(
        "; labels: db, Read-Only")


def test_explain_says_an_incident_tools_on_call_is_read_at_the_click(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.handlers.test_oncall_approvers import CONFIG as ONCALL_CONFIG

    path = tmp_path / "accessbot.yml"
    path.write_text(ONCALL_CONFIG)
    assert main(["explain", "--user", "alice@example.com", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "group 1: oncall is dba-oncall → whoever PagerDuty has on call for dba-oncall at the click" in out
    assert "group 2: oncall is security-oncall → whoever Opsgenie has on call for security-oncall at the click" in out
