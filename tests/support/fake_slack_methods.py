"""The Web API methods of the fake Slack, one function per method.

Each method takes the workspace and the call's arguments and returns the response body Slack would send; an
error Slack would report is raised as `SlackError` and becomes `{"ok": false, "error": ...}` with HTTP 200.
The caller (the HTTP handler in `fake_slack.py`) holds the workspace lock around every call.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from tests.support.fake_slack_blocks import message_block_errors, view_errors
from tests.support.fake_slack_workspace import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    SlackError,
    Upload,
    Workspace,
    channel_id,
    find_user,
    flag,
    require,
)


def _check_message(args: dict[str, Any]) -> None:
    if not args.get("text") and not args.get("blocks") and not args.get("attachments"):
        raise SlackError("no_text")
    if len(str(args.get("text") or "")) > 40_000:
        raise SlackError("msg_too_long")
    if "blocks" in args:
        problems = message_block_errors(args["blocks"])
        if problems:
            raise SlackError("invalid_blocks", messages=problems, errors=problems)


def _message(args: dict[str, Any], ts: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "message",
        "text": args.get("text") or "",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "team": TEAM_ID,
        "ts": ts,
    }
    for key in ("blocks", "attachments", "metadata", "thread_ts"):
        if key in args:
            message[key] = args[key]
    return message


# --- auth, chat, conversations --------------------------------------------------------------------


def auth_test(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "ok": True,
        "url": f"https://{TEAM_DOMAIN}.slack.com/",
        "team": "accessbot test",
        "user": "accessbot",
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


def chat_post_message(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = channel_id(ws, args.get("channel"))
    _check_message(args)
    ts = ws.next_ts()
    message = _message(args, ts)
    ws.messages[(channel, ts)] = message
    return {"ok": True, "channel": channel, "ts": ts, "message": message}


def _existing_message(ws: Workspace, args: dict[str, Any]) -> tuple[str, str]:
    channel = channel_id(ws, args.get("channel"))
    ts = str(require(args, "ts", "message_not_found"))
    if (channel, ts) not in ws.messages:
        raise SlackError("message_not_found")
    return channel, ts


def chat_update(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel, ts = _existing_message(ws, args)
    _check_message(args)
    message = _message(args, ts)
    message["edited"] = {"user": BOT_USER_ID, "ts": ws.next_ts()}
    ws.messages[(channel, ts)] = message
    return {"ok": True, "channel": channel, "ts": ts, "text": message["text"], "message": message}


def chat_delete(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel, ts = _existing_message(ws, args)
    del ws.messages[(channel, ts)]
    return {"ok": True, "channel": channel, "ts": ts}


def chat_post_ephemeral(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel_id(ws, args.get("channel"))
    find_user(ws, require(args, "user", "user_not_found"))
    _check_message(args)
    return {"ok": True, "message_ts": ws.next_ts()}


def conversations_open(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    if args.get("channel"):
        return {"ok": True, "no_op": True, "already_open": True, "channel": {"id": str(args["channel"])}}
    users = [
        u.strip() for u in str(require(args, "users", "users_list_not_supplied")).split(",") if u.strip()
    ]
    for user_id in users:
        find_user(ws, user_id)
    channel_id = "D" + users[0] if len(users) == 1 else "G" + "".join(sorted(users))[:20]
    return {"ok": True, "no_op": False, "already_open": False, "channel": {"id": channel_id}}


# --- views ----------------------------------------------------------------------------------------


def _store_view(
    ws: Workspace, view: dict[str, Any], *, view_id: str | None = None, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    problems = view_errors(view)
    if problems:
        raise SlackError("invalid_arguments", messages=problems)
    serial = ws.next_serial()
    view_id = view_id or f"V0TEST{serial:05d}"
    stored = {
        "type": view.get("type"),
        "title": view.get("title"),
        "blocks": view.get("blocks", []),
        "close": view.get("close"),
        "submit": view.get("submit"),
        "private_metadata": view.get("private_metadata", ""),
        "callback_id": view.get("callback_id", ""),
        "external_id": view.get("external_id", ""),
        "clear_on_close": bool(view.get("clear_on_close")),
        "notify_on_close": bool(view.get("notify_on_close")),
        "submit_disabled": bool(view.get("submit_disabled")),
        **{k: v for k, v in view.items() if k not in {"hash", "id", "state"}},
        "id": view_id,
        "team_id": TEAM_ID,
        "app_id": APP_ID,
        "bot_id": BOT_ID,
        "app_installed_team_id": TEAM_ID,
        "state": {"values": {}},
        "hash": f"{1_700_000_000 + serial}.{serial:08x}",
        "previous_view_id": previous.get("previous_view_id") if previous else None,
        "root_view_id": previous.get("root_view_id", view_id) if previous else view_id,
    }
    ws.views[view_id] = stored
    return stored


def _view_arg(args: dict[str, Any]) -> dict[str, Any]:
    view = require(args, "view")
    if not isinstance(view, dict):
        raise SlackError("invalid_arguments", messages=["view must be a JSON object"])
    return view


def _require_trigger(args: dict[str, Any]) -> None:
    trigger = require(args, "trigger_id", "invalid_trigger_id")
    if not isinstance(trigger, str) or "." not in trigger:
        raise SlackError("invalid_trigger_id")


def views_open(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    _require_trigger(args)
    return {"ok": True, "view": _store_view(ws, _view_arg(args))}


def views_push(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    _require_trigger(args)
    return {"ok": True, "view": _store_view(ws, _view_arg(args))}


def views_update(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    view = _view_arg(args)
    view_id, external_id = args.get("view_id"), args.get("external_id")
    if view_id:
        current = ws.views.get(str(view_id))
    elif external_id:
        current = next((v for v in ws.views.values() if v.get("external_id") == external_id), None)
    else:
        raise SlackError("invalid_arguments", messages=["either view_id or external_id is required"])
    if current is None:
        raise SlackError("not_found")
    if args.get("hash") and args["hash"] != current["hash"]:
        raise SlackError("hash_conflict")
    return {"ok": True, "view": _store_view(ws, view, view_id=current["id"], previous=current)}


def views_publish(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    user_id = str(require(args, "user_id"))
    find_user(ws, user_id)
    view = _view_arg(args)
    if view.get("type") != "home":
        raise SlackError("invalid_arguments", messages=["must be home [json-pointer:/view/type]"])
    current = ws.views.get(ws.home_views.get(user_id, ""))
    if current is not None and args.get("hash") and args["hash"] != current["hash"]:
        raise SlackError("hash_conflict")
    stored = _store_view(ws, view, view_id=current["id"] if current else None, previous=current)
    ws.home_views[user_id] = stored["id"]
    return {"ok": True, "view": stored}


# --- users and user groups ------------------------------------------------------------------------


def users_info(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "user": find_user(ws, args.get("user"))}


def users_lookup_by_email(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    email = str(require(args, "email", "users_not_found")).lower()
    for user in ws.users.values():
        if str(user["profile"].get("email", "")).lower() == email and not user["deleted"]:
            return {"ok": True, "user": user}
    raise SlackError("users_not_found")  # Slack does not find deactivated users by email either


USERS_LIST_MAX_PAGE = 1000


def users_list(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    """Pages of at most 1000 (Slack's cap); without a limit a large workspace is `limit_required`."""
    members = list(ws.users.values())
    cursor = str(args.get("cursor") or "")
    if cursor and not cursor.startswith("dXNlcjpV"):
        raise SlackError("invalid_cursor")
    start = int(cursor.removeprefix("dXNlcjpV") or 0)
    requested = int(args.get("limit") or 0)
    if not requested and len(members) > USERS_LIST_MAX_PAGE:
        raise SlackError("limit_required")
    limit = min(requested or len(members) or 1, USERS_LIST_MAX_PAGE)
    page = members[start : start + limit]
    more = start + limit < len(members)
    return {
        "ok": True,
        "members": page,
        "cache_ts": int(time.time()),
        "response_metadata": {"next_cursor": f"dXNlcjpV{start + limit}" if more else ""},
    }


def _usergroup(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    group = ws.usergroups.get(str(args.get("usergroup") or ""))
    if group is None:
        raise SlackError("no_such_subteam")
    return group


def _usergroup_out(group: dict[str, Any], *, include_users: bool) -> dict[str, Any]:
    out = dict(group, users=list(group["users"]), user_count=len(group["users"]))
    if not include_users:
        del out["users"]
    return out


def usergroups_list(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    include = flag(args, "include_users")
    return {
        "ok": True,
        "usergroups": [_usergroup_out(g, include_users=include) for g in ws.usergroups.values()],
    }


def usergroups_users_list(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "users": list(_usergroup(ws, args)["users"])}


def usergroups_users_update(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    """Replaces the membership. Like Slack: unknown ids are `invalid_users` and change nothing; deactivated
    users are dropped silently; an empty `users` empties the group *and* answers `invalid_users` (a quirk
    connectors must tolerate), while `users=[]` empties it cleanly."""
    group = _usergroup(ws, args)
    raw = args.get("users")
    ids = raw if isinstance(raw, list) else [u.strip() for u in str(raw or "").split(",") if u.strip()]
    if raw == "[]":
        ids = []
    if any(str(u) not in ws.users for u in ids):
        raise SlackError("invalid_users")
    group["users"] = [str(u) for u in dict.fromkeys(ids) if not ws.users[str(u)]["deleted"]]
    group["user_count"] = len(group["users"])
    group["date_update"] = int(time.time())
    if not ids and raw != "[]":
        raise SlackError("invalid_users")
    return {"ok": True, "usergroup": _usergroup_out(group, include_users=True)}


# --- files ----------------------------------------------------------------------------------------


def files_get_upload_url_external(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    filename = str(require(args, "filename"))
    length = int(require(args, "length"))
    file_id = f"F0TEST{ws.next_serial():05d}"
    ws.uploads[file_id] = Upload(file_id=file_id, filename=filename, length=length)
    return {"ok": True, "upload_url": f"{ws.base_url}upload/v1/{file_id}", "file_id": file_id}


def receive_upload(ws: Workspace, file_id: str, data: bytes) -> bool:
    upload = ws.uploads.get(file_id)
    if upload is None:
        return False
    upload.data = data
    upload.length = len(data)
    return True


def files_complete_upload_external(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    files = require(args, "files")
    if not isinstance(files, list):
        raise SlackError("invalid_arguments", messages=["files must be a JSON array"])
    out = []
    for entry in files:
        upload = ws.uploads.get(str(entry.get("id")))
        if upload is None or upload.data is None:
            raise SlackError("file_not_found")
        upload.title = entry.get("title") or upload.filename
        upload.channel_id = channel_id(ws, args["channel_id"]) if args.get("channel_id") else None
        upload.completed = True
        out.append(
            {
                "id": upload.file_id,
                "name": upload.filename,
                "title": upload.title,
                "size": upload.length,
                "user": BOT_USER_ID,
                "channels": [upload.channel_id] if upload.channel_id else [],
            }
        )
    return {"ok": True, "files": out}


# --- Socket Mode ----------------------------------------------------------------------------------

APP_TOKEN_METHODS = frozenset({"apps.connections.open"})  # take only the app-level token (xapp-…)


def apps_connections_open(ws: Workspace, args: dict[str, Any], socket_mode_url: str = "") -> dict[str, Any]:
    """A one-time WebSocket URL for Socket Mode: `socket_mode_url` (a `FakeSocketMode`) with a ticket.

    Without one it points at the fake's own HTTP server, which refuses the WebSocket handshake.
    """
    base = socket_mode_url or ws.base_url.replace("http://", "ws://", 1) + "link/"
    return {"ok": True, "url": f"{base}?ticket={uuid.uuid4()}&app_id={APP_ID}"}


def files_upload(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    raise SlackError("method_deprecated")  # retired by Slack: use files.getUploadURLExternal


METHODS: dict[str, Callable[[Workspace, dict[str, Any]], dict[str, Any]]] = {
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.delete": chat_delete,
    "chat.postEphemeral": chat_post_ephemeral,
    "conversations.open": conversations_open,
    "views.open": views_open,
    "views.push": views_push,
    "views.update": views_update,
    "views.publish": views_publish,
    "users.info": users_info,
    "users.lookupByEmail": users_lookup_by_email,
    "users.list": users_list,
    "usergroups.list": usergroups_list,
    "usergroups.users.list": usergroups_users_list,
    "usergroups.users.update": usergroups_users_update,
    "files.getUploadURLExternal": files_get_upload_url_external,
    "files.completeUploadExternal": files_complete_upload_external,
    "files.upload": files_upload,
    "apps.connections.open": apps_connections_open,
}
