"""The state of the fake Slack workspace: users, user groups, views, messages, uploads, and Slack's errors.

`fake_slack_methods.py` implements the Web API methods on it; `fake_slack.py` serves them over HTTP.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

TEAM_ID = "T0TEST"
TEAM_DOMAIN = "accessbot-test"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
APP_ID = "A0TEST"


class SlackError(Exception):
    def __init__(self, error: str, *, messages: list[str] | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.body: dict[str, Any] = {"ok": False, "error": error, **extra}
        if messages:
            self.body["response_metadata"] = {"messages": [f"[ERROR] {m}" for m in messages]}


@dataclass
class Upload:
    file_id: str
    filename: str
    length: int
    data: bytes | None = None
    title: str | None = None
    channel_id: str | None = None
    completed: bool = False


@dataclass
class Workspace:
    base_url: str = ""  # "http://127.0.0.1:PORT/", set by the server once bound
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    usergroups: dict[str, dict[str, Any]] = field(default_factory=dict)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    home_views: dict[str, str] = field(default_factory=dict)  # user id -> view id
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (channel, ts) -> message
    uploads: dict[str, Upload] = field(default_factory=dict)
    serial: int = 0

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial

    def next_ts(self) -> str:
        micros = 100 * self.next_serial()
        return f"{1_700_000_000 + micros // 1_000_000}.{micros % 1_000_000:06d}"


def make_user(
    user_id: str,
    email: str | None,
    *,
    name: str | None,
    real_name: str | None,
    tz: str,
    deleted: bool,
    is_bot: bool,
) -> dict[str, Any]:
    """A user object shaped like `users.info` returns it."""
    local = name or (email.split("@")[0] if email else user_id.lower())
    full = real_name if real_name is not None else local.replace(".", " ").title()
    now = datetime.now(ZoneInfo(tz))
    offset = now.utcoffset()
    profile: dict[str, Any] = {
        "real_name": full,
        "real_name_normalized": full,
        "display_name": local,
        "display_name_normalized": local,
        "first_name": full.split(" ")[0],
        "last_name": " ".join(full.split(" ")[1:]),
        "title": "",
        "team": TEAM_ID,
        "image_48": f"https://avatars.example.invalid/{user_id}_48.png",
    }
    if email is not None:
        profile["email"] = email
    if is_bot:
        profile["bot_id"] = BOT_ID if user_id == BOT_USER_ID else f"B{user_id[1:]}"
    return {
        "id": user_id,
        "team_id": TEAM_ID,
        "name": local,
        "deleted": deleted,
        "color": "9f69e7",
        "real_name": full,
        "tz": tz,
        "tz_label": now.tzname() or tz,
        "tz_offset": int(offset.total_seconds()) if offset is not None else 0,
        "profile": profile,
        "is_admin": False,
        "is_owner": False,
        "is_primary_owner": False,
        "is_restricted": False,
        "is_ultra_restricted": False,
        "is_bot": is_bot,
        "is_app_user": False,
        "updated": 1_700_000_000,
        "is_email_confirmed": email is not None and not is_bot,
    }


def make_usergroup(group_id: str, handle: str, users: list[str]) -> dict[str, Any]:
    return {
        "id": group_id,
        "team_id": TEAM_ID,
        "is_usergroup": True,
        "is_subteam": True,
        "name": handle,
        "description": "",
        "handle": handle,
        "is_external": False,
        "date_create": 1_700_000_000,
        "date_update": 1_700_000_000,
        "date_delete": 0,
        "auto_type": None,
        "created_by": "U0ADMIN",
        "updated_by": "U0ADMIN",
        "deleted_by": None,
        "prefs": {"channels": [], "groups": []},
        "users": list(users),
        "user_count": len(users),
    }


def flag(args: dict[str, Any], name: str) -> bool:
    return args.get(name) in (True, 1, "1", "true", "True")


def require(args: dict[str, Any], name: str, error: str = "invalid_arguments") -> Any:
    value = args.get(name)
    if value in (None, ""):
        raise SlackError(error, messages=[f"missing required field: {name}"])
    return value


def find_user(ws: Workspace, user_id: Any, error: str = "user_not_found") -> dict[str, Any]:
    user = ws.users.get(str(user_id))
    if user is None:
        raise SlackError(error)
    return user


def channel_id(ws: Workspace, channel: Any) -> str:
    """A channel id; a user id stands for the DM with that user, as in Slack."""
    channel = str(channel or "")
    if not channel:
        raise SlackError("channel_not_found")
    if channel[0] in "UW":
        find_user(ws, channel, "channel_not_found")
        return "D" + channel
    return channel


JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata")


def decode_json_fields(args: dict[str, Any]) -> dict[str, Any]:
    """Form-encoded calls carry structured fields as JSON strings; record them as Slack reads them."""
    for key in JSON_FIELDS:
        value = args.get(key)
        if isinstance(value, str) and value[:1] in "[{":
            try:
                args[key] = json.loads(value)
            except ValueError:
                pass
    return args
