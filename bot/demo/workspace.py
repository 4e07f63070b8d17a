"""The demo's Slack workspace: users, user groups, conversations, views, and a log of everything that happened.

The demo's Web API (:mod:`bot.demo.webapi`) changes it on the bot's behalf; the page reads it. Every change
bumps ``version`` and wakes the page's long poll (:meth:`Workspace.wait_for_change`).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TEAM_ID = "T0DEMO"
TEAM_DOMAIN = "accessbot-demo"
BOT_USER_ID = "UACCESSBOT"
BOT_ID = "BACCESSBOT"
APP_ID = "A0DEMO"
LOG_LIMIT = 500


class SlackError(Exception):
    """An error Slack reports as ``{"ok": false, "error": ...}`` (with HTTP 200)."""

    def __init__(self, error: str, *, messages: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.body: dict[str, Any] = {"ok": False, "error": error}
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


@dataclass
class Workspace:
    """All state, guarded by ``lock``; ``now`` is the bot's clock (moved by the page's time controls)."""

    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    base_url: str = ""  # "http://127.0.0.1:PORT/" of the demo's server, once bound
    channel_names: dict[str, str] = field(default_factory=dict)  # channel id -> "#name"
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    usergroups: dict[str, dict[str, Any]] = field(default_factory=dict)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    home_views: dict[str, str] = field(default_factory=dict)  # user id -> view id
    modal_stacks: dict[str, list[str]] = field(default_factory=dict)  # user id -> view ids, top last
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # channel -> messages, oldest first
    ephemerals: list[dict[str, Any]] = field(default_factory=list)  # {"channel", "user", "message"}
    uploads: dict[str, Upload] = field(default_factory=dict)
    triggers: dict[str, tuple[str, float]] = field(default_factory=dict)  # trigger id -> (user id, issued)
    log: list[dict[str, Any]] = field(default_factory=list)
    version: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)
    _changed: threading.Condition = field(init=False)
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self._changed = threading.Condition(self.lock)
        self.users[BOT_USER_ID] = make_user(BOT_USER_ID, None, "accessbot", is_bot=True)

    # --- ids ---------------------------------------------------------------------------------------------

    def next_serial(self) -> int:
        return next(self._serial)

    def next_ts(self) -> str:
        return f"{time.time():.0f}.{self.next_serial():06d}"

    def new_trigger(self, user_id: str) -> str:
        n = self.next_serial()
        trigger = f"{1_000_000 + n}.{int(time.time())}.demo{n:06x}"
        with self.lock:
            self.triggers[trigger] = (user_id, time.monotonic())
        return trigger

    # --- changes -----------------------------------------------------------------------------------------

    def changed(self) -> None:
        with self._changed:
            self.version += 1
            self._changed.notify_all()

    def wait_for_change(self, since: int, timeout: float) -> int:
        with self._changed:
            self._changed.wait_for(lambda: self.version != since, timeout=timeout)
            return self.version

    def record(self, kind: str, title: str, summary: str, detail: Any, *, ok: bool = True,
               notify: bool = True) -> None:
        """One line of the side panel: a Web API call, a connector operation, a webhook call, a payload.

        ``notify=False`` (reads) does not wake the page: a page whose refresh reads would otherwise never rest.
        """
        with self.lock:
            self.log.append({"seq": self.next_serial(), "at": self.now().isoformat(), "kind": kind, "title": title,
                             "summary": summary, "ok": ok, "detail": detail})
            del self.log[:-LOG_LIMIT]
        if notify:
            self.changed()

    # --- reads -------------------------------------------------------------------------------------------

    def user(self, user_id: Any, error: str = "user_not_found") -> dict[str, Any]:
        found = self.users.get(str(user_id or ""))
        if found is None:
            raise SlackError(error)
        return found

    def channel(self, channel: Any) -> str:
        """A channel id; a user id stands for the DM with that user, as in Slack."""
        name = str(channel or "")
        if not name:
            raise SlackError("channel_not_found")
        if name[0] in "UW":
            self.user(name, "channel_not_found")
            return "D" + name
        if name[0] == "D":
            self.user(name[1:], "channel_not_found")
        return name

    def find_message(self, channel: str, ts: str) -> dict[str, Any]:
        for message in self.messages.get(channel, []):
            if message["ts"] == ts:
                return message
        raise SlackError("message_not_found")


def make_user(user_id: str, email: str | None, name: str, *, real_name: str | None = None, tz: str = "UTC",
              is_bot: bool = False, title: str = "") -> dict[str, Any]:
    """A user object shaped like ``users.info`` returns it."""
    full = real_name or name.replace(".", " ").title()
    profile: dict[str, Any] = {"real_name": full, "real_name_normalized": full, "display_name": name,
                               "display_name_normalized": name, "title": title, "team": TEAM_ID,
                               "first_name": full.split(" ")[0], "last_name": " ".join(full.split(" ")[1:])}
    if email:
        profile["email"] = email
    if is_bot:
        profile["bot_id"] = BOT_ID
    return {"id": user_id, "team_id": TEAM_ID, "name": name, "deleted": False, "real_name": full, "tz": tz,
            "tz_label": tz, "tz_offset": 0, "profile": profile, "is_admin": False, "is_owner": False,
            "is_bot": is_bot, "is_app_user": False, "updated": 1_700_000_000, "is_restricted": False,
            "is_ultra_restricted": False, "is_email_confirmed": bool(email)}


def make_usergroup(group_id: str, handle: str, users: list[str]) -> dict[str, Any]:
    return {"id": group_id, "team_id": TEAM_ID, "is_usergroup": True, "name": handle, "handle": handle,
            "description": "", "date_create": 1_700_000_000, "date_update": 1_700_000_000, "date_delete": 0,
            "users": list(users), "user_count": len(users)}
