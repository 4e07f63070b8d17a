"""The command line as an admin uses it: exit codes, messages naming the YAML path, real databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "examples" / "accessbot.yml")


def test_example_config_is_valid_and_describes_each_flow(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", EXAMPLE]) == 0
    out = capsys.readouterr().out
    assert "valid — 5 flow(s)" in out
    assert sum(1 for line in out.splitlines() if line.startswith("  - ")) == 5
    assert "prod-db-read: members of group sre or backend" in out


BASE = """
integrations:
  - {name: db, type: noop, resources: [{type: database, name: billing}], permissions: {read_only: {}}}
bundles:
  - {name: b1, targets: [{integration: db, permissions: [read_only]}]}
flows:
  - name: f1
    requestors: {conditions: [{attribute: group, op: is, values: [sre]}]}
    targets: [{bundle: b1}]
"""


@pytest.mark.parametrize(
    ("description", "old", "new", "expected"),
    [
        ("typo'd key", "    targets: [{bundle: b1}]", "    targets: [{bundle: b1}]\n    grant_fro: 4h",
         "line 10: flows[0].grant_fro: unknown key 'grant_fro' (did you mean 'grant_for'?)"),
        ("bad op", "op: is,", "op: iss,",
         "line 8: flows[0].requestors.conditions[0].op: 'iss' (did you mean 'is'?) — allowed: is, is_not, contains"),
        ("max_times 11", "    targets: [{bundle: b1}]", "    targets: [{bundle: b1}]\n    extend: {max_times: 11}",
         "flows[0].extend.max_times: 11 — allowed: less than or equal to 10"),
        ("negative duration", "    targets: [{bundle: b1}]", "    targets: [{bundle: b1}]\n    grant_for: -1h",
         "line 10: flows[0].grant_for: a duration must be positive"),
        ("unknown bundle", "{bundle: b1}]", "{bundle: b2}]",
         "line 9: flows[0].targets[0].bundle: unknown bundle 'b2'; defined: b1"),
        ("unknown permission", "permissions: [read_only]}]}", "permissions: [read_al]}]}",
         "bundles[0].targets[0].permissions[0]: unknown permission 'read_al'"),
        ("bad query", "{bundle: b1}]",
         "{integration: db, permissions: [read_only], resources: {query: 'resource_name = '}}]",
         "flows[0].targets[0].resources.query: bad query: line 1, column"),
    ],
)
def test_bad_configs_exit_1_naming_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], description: str, old: str, new: str, expected: str
) -> None:
    assert old in BASE, description
    path = tmp_path / "accessbot.yml"
    path.write_text(BASE.replace(old, new, 1))
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert expected in err, err


def test_schema_is_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "flows" in schema["properties"]
    assert schema["additionalProperties"] is False


def test_explain_answers_from_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--user", "alice@example.com", "--config", EXAMPLE]) == 0
    out = capsys.readouterr().out
    assert "flow prod-db-read" in out
    assert "max duration: 4h" in out
    assert "group 1: group is dba or owner is true → dana@example.com, dba@example.com" in out
    assert main(["explain", "--user", "alice@example.com", "--config", EXAMPLE, "--resource", "search"]) == 0
    assert "prod-db-read" not in capsys.readouterr().out


def test_requests_audit_and_revoke_from_the_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.bot.fixtures import CONFIG

    config = tmp_path / "accessbot.yml"
    config.write_text(CONFIG)
    monkeypatch.setenv("ACCESSBOT_CONFIG", str(config))
    monkeypatch.setenv("ACCESSBOT_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.chdir(tmp_path)
    assert main(["db", "upgrade"]) == 0
    from bot.cli import _container
    from bot.lifecycle.requests import RequestInput
    from bot.settings import Settings

    container = _container(Settings())
    alice = container.directory.identity("UALICE", container.clock.now())
    out = container.service.submit(RequestInput(alice, ["db/database/search"], "read_write", justification="t"))
    assert out.request.state == "active"
    capsys.readouterr()
    assert main(["requests", "list", "--state", "active"]) == 0
    listing = capsys.readouterr().out
    assert f"{out.request.id:>6}  active" in listing
    assert main(["requests", "revoke", str(out.request.id)]) == 0
    assert "is revoked" in capsys.readouterr().out
    assert main(["audit", "export", "--format", "jsonl"]) == 0
    events = [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()]
    assert events[:3] == ["submitted", "approved", "granted"]
    assert "revoked" in events
    assert main(["audit", "export", "--format", "csv", "--since", "2999-01-01"]) == 0
    assert capsys.readouterr().out.strip() == "id,at,event,actor,request_id,grant_id,details"
    assert main(["audit", "export", "--since", "yesterday"]) == 1


@pytest.mark.parametrize(
    ("description", "argv", "expected"),
    [
        ("30 digits", ["requests", "revoke", "1" * 30], f"argument id: {'1' * 30} is out of range (1 to 2147483647)"),
        ("past the INTEGER column", ["requests", "revoke", "2147483648"], "out of range (1 to 2147483647)"),
        ("zero", ["requests", "revoke", "0"], "argument id: 0 is out of range"),
        ("Arabic-Indic digits", ["requests", "revoke", "\u0663\u0664"], "'٣٤' is not a number (ASCII digits 0-9 only)"),
        ("full-width digits", ["requests", "revoke", "\uff15"], "is not a number (ASCII digits 0-9 only)"),
        ("negative", ["requests", "revoke", "-3"], "error:"),
        ("underscores", ["requests", "revoke", "1_000"], "'1_000' is not a number"),
        ("padded", ["requests", "revoke", " 12"], "' 12' is not a number"),
        ("limit in Arabic-Indic digits", ["requests", "list", "--limit", "\u0665"], "argument --limit: '٥' is not"),
        ("unknown state", ["requests", "list", "--state", "activ"],
         "argument --state: invalid choice: 'activ' (choose from 'pending', 'granting', 'active', 'denied', "
         "'canceled', 'timed_out', 'failed', 'expired', 'revoked')"),
    ],
)
def test_bad_ids_and_states_are_usage_errors(
    capsys: pytest.CaptureFixture[str], description: str, argv: list[str], expected: str
) -> None:
    assert main(argv) == 2, description
    captured = capsys.readouterr()
    assert expected in captured.err, captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def _shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.bot.fixtures import CONFIG

    config = tmp_path / "accessbot.yml"
    config.write_text(CONFIG)
    monkeypatch.setenv("ACCESSBOT_CONFIG", str(config))
    monkeypatch.setenv("ACCESSBOT_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.chdir(tmp_path)


def test_states_filter_and_an_unknown_id_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _shell(tmp_path, monkeypatch)
    assert main(["requests", "list", "--state", "pending", "--state", "timed_out"]) == 0
    assert "(no requests)" in capsys.readouterr().out
    assert main(["requests", "revoke", "2147483647"]) == 1
    assert capsys.readouterr().err == "error: There is no request #2147483647.\n"


def test_an_admin_resets_a_users_mfa_from_the_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyotp

    from bot.cli import _container
    from bot.security.mfa import MfaService
    from bot.settings import Settings

    _shell(tmp_path, monkeypatch)
    container = _container(Settings())
    mfa = MfaService(container.db, container.clock, container.secrets)
    enrolment = mfa.enroll("UALICE", "alice@example.com")
    assert enrolment is not None
    assert mfa.verify("UALICE", pyotp.TOTP(enrolment.secret).at(container.clock.now()))
    assert mfa.enroll("UALICE", "alice@example.com") is None, "enrolled: no second secret without a reset"

    assert main(["mfa", "reset", "alice@example.com", "--reason", "lost phone"]) == 0
    assert capsys.readouterr().out == "MFA enrolment of UALICE removed; they enrol again with /access mfa\n"
    assert not mfa.enrolled("UALICE")
    assert mfa.enroll("UALICE", "alice@example.com") is not None, "a new authenticator can be enrolled"

    assert main(["audit", "export"]) == 0
    resets = [e for e in map(json.loads, capsys.readouterr().out.splitlines()) if e["event"] == "mfa_reset"]
    assert len(resets) == 1 and resets[0]["actor"] == "shell-admin@accessbot"
    assert resets[0]["details"]["user"] == "UALICE" and resets[0]["details"]["reason"] == "lost phone"
    assert resets[0]["details"]["os_user"]

    assert main(["mfa", "reset", "UALICE"]) == 0  # the unconfirmed new enrolment
    assert main(["mfa", "reset", "UALICE"]) == 1
    assert capsys.readouterr().err == "error: UALICE has no MFA enrolment: nothing to reset\n"
    assert main(["mfa", "reset", "nobody@example.com"]) == 1
    assert "no Slack user id is known for nobody@example.com" in capsys.readouterr().err
    assert main(["mfa", "reset", "alice; DROP TABLE"]) == 1
    assert "is neither a Slack user id (U…) nor an email" in capsys.readouterr().err
