"""The config the demo runs: the user's (or the shipped demo config) with its integrations pointed at the demo.

- ``webhook`` integrations post to the demo's own receiver (``/webhooks/<name>``), signed with a secret the demo
  generates, so the page shows each signed call;
- ``postgresql`` integrations become recording-only (``type: noop``) unless ``--postgres URL`` is given, in
  which case they are real and connect there;
- ``slack_usergroup`` integrations work against the demo workspace's user groups.

Every connector is wrapped in :class:`bot.demo.recording.RecordingConnector` (see :mod:`bot.demo.server`).
The workspace gets one Slack user per person the config names (directory, on-call rotations, conditions),
and a named channel for the audit channel and for each flow's approval channel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bot.demo.workspace import Workspace, make_user, make_usergroup
from policy.config import Config
from policy.validation import load_config_file, load_config_text

WEBHOOK_SECRET_ENV = "ACCESSBOT_DEMO_WEBHOOK_SECRET"
POSTGRES_DSN_ENV = "ACCESSBOT_DEMO_POSTGRES_DSN"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def shipped_config() -> Path:
    """The demo config inside the package (works from any directory)."""
    return Path(str(resources.files("bot.demo").joinpath("accessbot.yml")))


@dataclass(frozen=True)
class Prepared:
    text: str  # the YAML the bot loads
    config: Config
    env: dict[str, str]  # secrets the rewritten integrations read (dsn_env, secret_env)


def prepare(source: str | Path, demo_url: str, *, webhook_secret: str, postgres_url: str | None) -> Prepared:
    """Validate ``source`` (clear errors with YAML paths) and rewrite its integrations for the demo."""
    load_config_file(str(source))  # a ConfigError names the user's file, not the rewritten copy
    raw: dict[str, Any] = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    env: dict[str, str] = {}
    for integration in raw.get("integrations") or []:
        match integration.get("type"):
            case "webhook":
                integration["url"] = f"{demo_url}webhooks/{integration['name']}"
                integration["secret_env"] = WEBHOOK_SECRET_ENV
                env[WEBHOOK_SECRET_ENV] = webhook_secret
            case "postgresql" if postgres_url:
                integration["dsn_env"] = POSTGRES_DSN_ENV
                env[POSTGRES_DSN_ENV] = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
            case "postgresql":
                integration["type"] = "noop"
                integration.pop("dsn_env", None)
                integration.pop("discover", None)
    text = yaml.safe_dump(raw, sort_keys=False)
    return Prepared(text, load_config_text(text, str(source)), env)


def slack_id_for(email: str) -> str:
    local = re.sub(r"[^A-Za-z0-9]", "", email.split("@")[0]).upper() or "USER"
    return f"U{local[:10]}"


def people(config: Config) -> list[str]:
    """Every email the config names: the directory, admins, on-call rotations, ``user`` conditions, owners."""
    found: dict[str, None] = {}
    for user in config.directory.users:
        found[user.email.lower()] = None
    for schedule in config.directory.oncall:
        members = schedule.rotation.members if schedule.rotation is not None else ()
        found.update(dict.fromkeys(m.lower() for m in members if EMAIL.match(m)))

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and EMAIL.match(value):
            found[value.lower()] = None

    walk(config.model_dump(mode="json", exclude={"directory"}))
    return list(found)


def populate(ws: Workspace, config: Config) -> None:
    """Slack users for everyone the config names; user groups for the slack_usergroup resources."""
    by_email = {u.email.lower(): u for u in config.directory.users}
    with ws.lock:
        for email in people(config):
            known = by_email.get(email)
            user_id = (known.slack_id if known else None) or slack_id_for(email)
            title = ", ".join(known.groups) if known else ""
            ws.users[user_id] = make_user(user_id, email, email.split("@")[0], title=title)
        for integration in config.integrations:
            if integration.type == "slack_usergroup":
                for resource in integration.resources:
                    group_id = "S" + re.sub(r"[^A-Z0-9]", "", resource.name.upper())[:10]
                    ws.usergroups[group_id] = make_usergroup(group_id, resource.name, [])
        if config.audit_channel:
            ws.channel_names[config.audit_channel] = "#accessbot-audit"
        approval_channels = list(dict.fromkeys(f.approval.channel for f in config.flows if f.approval.channel))
        for n, channel in enumerate(approval_channels, start=1):  # the channels flows post their requests to
            ws.channel_names.setdefault(channel, "#access-approvals" + (f"-{n}" if n > 1 else ""))
    ws.changed()
