"""The part of the Slack Web API the bot uses, answered from the demo's workspace (one function per method).

Each method takes the workspace and the call's arguments and returns the body Slack would send; an error is
raised as :class:`SlackError` and becomes ``{"ok": false, "error": ...}``. :func:`call` runs one under the
workspace lock and writes it to the side panel's log. Messages and threads: :mod:`bot.demo.chat`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bot.demo.apiargs import decode_json_fields, flag, require
from bot.demo.blockkit import view_problems
from bot.demo.chat import (
    chat_delete,
    chat_post_ephemeral,
    chat_post_message,
    chat_update,
    conversations_open,
    message_of,
)
from bot.demo.workspace import APP_ID, BOT_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID, SlackError, Upload, Workspace

TRIGGER_SECONDS = 3.0  # Slack's trigger ids expire after three seconds


def auth_test(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "url": f"https://{TEAM_DOMAIN}.slack.com/", "team": "accessbot demo", "user": "accessbot",
            "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}


# --- views ------------------------------------------------------------------------------------------------


def _store_view(ws: Workspace, view: Any, *, current: dict[str, Any] | None = None) -> dict[str, Any]:
    problems = view_problems(view)
    if problems:
        raise SlackError("invalid_arguments", messages=problems)
    serial = ws.next_serial()
    view_id = current["id"] if current else f"V0DEMO{serial:05d}"
    stored = {"private_metadata": "", "callback_id": "", "external_id": "", "clear_on_close": False,
              "notify_on_close": False, "submit": None, "close": None,
              **{k: v for k, v in view.items() if k not in {"hash", "id", "state"}},
              "id": view_id, "team_id": TEAM_ID, "app_id": APP_ID, "bot_id": BOT_ID, "app_installed_team_id": TEAM_ID,
              "state": {"values": {}}, "hash": f"{int(time.time())}.{serial:08x}",
              "previous_view_id": current.get("previous_view_id") if current else None,
              "root_view_id": current.get("root_view_id", view_id) if current else view_id}
    ws.views[view_id] = stored
    return stored


def _trigger_user(ws: Workspace, args: dict[str, Any]) -> str:
    trigger = str(require(args, "trigger_id", "invalid_trigger_id"))
    issued = ws.triggers.pop(trigger, None)
    if issued is None:
        raise SlackError("invalid_trigger_id")
    if time.monotonic() - issued[1] > TRIGGER_SECONDS:
        raise SlackError("expired_trigger_id")
    return issued[0]


def _view_arg(args: dict[str, Any]) -> dict[str, Any]:
    view = require(args, "view")
    if not isinstance(view, dict):
        raise SlackError("invalid_arguments", messages=["view must be a JSON object"])
    return view


def views_open(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    user = _trigger_user(ws, args)
    stored = _store_view(ws, _view_arg(args))
    stored["_user"] = user
    ws.modal_stacks[user] = [stored["id"]]
    return {"ok": True, "view": stored}


def views_push(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    user = _trigger_user(ws, args)
    stack = ws.modal_stacks.get(user) or []
    if not stack:
        raise SlackError("push_limit_reached" if len(stack) >= 3 else "invalid_arguments",
                         messages=["views.push needs an open modal"])
    stored = _store_view(ws, _view_arg(args))
    stored.update(_user=user, previous_view_id=stack[-1], root_view_id=stack[0])
    stack.append(stored["id"])
    return {"ok": True, "view": stored}


def views_update(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    view = _view_arg(args)
    if args.get("view_id"):
        current = ws.views.get(str(args["view_id"]))
    elif args.get("external_id"):
        current = next((v for v in ws.views.values() if v.get("external_id") == args["external_id"]), None)
    else:
        raise SlackError("invalid_arguments", messages=["either view_id or external_id is required"])
    if current is None:
        raise SlackError("not_found")
    if args.get("hash") and args["hash"] != current["hash"]:
        raise SlackError("hash_conflict")
    user = current.get("_user")
    stored = _store_view(ws, view, current=current)
    if user:
        stored["_user"] = user
    return {"ok": True, "view": stored}


def views_publish(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    user_id = str(ws.user(require(args, "user_id"))["id"])
    view = _view_arg(args)
    if view.get("type") != "home":
        raise SlackError("invalid_arguments", messages=["must be home [json-pointer:/view/type]"])
    current = ws.views.get(ws.home_views.get(user_id, ""))
    if current is not None and args.get("hash") and args["hash"] != current["hash"]:
        raise SlackError("hash_conflict")
    stored = _store_view(ws, view, current=current)
    ws.home_views[user_id] = stored["id"]
    return {"ok": True, "view": stored}


# --- users and user groups --------------------------------------------------------------------------------


def users_info(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "user": ws.user(args.get("user"))}


def users_lookup_by_email(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    email = str(require(args, "email", "users_not_found")).lower()
    for user in ws.users.values():
        if str(user["profile"].get("email", "")).lower() == email and not user["deleted"]:
            return {"ok": True, "user": user}
    raise SlackError("users_not_found")


def users_list(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    members = list(ws.users.values())
    start = int(str(args.get("cursor") or "0") or 0)
    limit = int(args.get("limit") or 0) or len(members)
    more = start + limit < len(members)
    return {"ok": True, "members": members[start:start + limit], "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": str(start + limit) if more else ""}}


def _usergroup(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    group = ws.usergroups.get(str(args.get("usergroup") or ""))
    if group is None:
        raise SlackError("no_such_subteam")
    return group


def usergroups_list(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    include = flag(args, "include_users")
    groups = [dict(g, users=list(g["users"])) if include else {k: v for k, v in g.items() if k != "users"}
              for g in ws.usergroups.values()]
    return {"ok": True, "usergroups": groups}


def usergroups_users_list(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "users": list(_usergroup(ws, args)["users"])}


def usergroups_users_update(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    group = _usergroup(ws, args)
    raw = args.get("users")
    ids = raw if isinstance(raw, list) else [u.strip() for u in str(raw or "").split(",") if u.strip()]
    if raw == "[]":
        ids = []
    if any(str(u) not in ws.users for u in ids):
        raise SlackError("invalid_users")
    group["users"] = [str(u) for u in dict.fromkeys(ids)]
    group["user_count"] = len(group["users"])
    group["date_update"] = int(time.time())
    return {"ok": True, "usergroup": dict(group, users=list(group["users"]))}


# --- files (the MFA enrolment's QR code) ------------------------------------------------------------------


def files_get_upload_url_external(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    file_id = f"F0DEMO{ws.next_serial():05d}"
    ws.uploads[file_id] = Upload(file_id, str(require(args, "filename")), int(require(args, "length")))
    return {"ok": True, "upload_url": f"{ws.base_url}upload/{file_id}", "file_id": file_id}


def receive_upload(ws: Workspace, file_id: str, data: bytes) -> bool:
    upload = ws.uploads.get(file_id)
    if upload is None:
        return False
    upload.data, upload.length = data, len(data)
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
        upload.channel_id = ws.channel(args["channel_id"]) if args.get("channel_id") else None
        if upload.channel_id:  # shared in the channel: the page shows it as a message with the image
            message = message_of(ws, {"text": args.get("initial_comment") or "", "files": [
                {"id": upload.file_id, "name": upload.filename, "title": upload.title,
                 "url": f"{ws.base_url}files/{upload.file_id}"}]}, ws.next_ts())
            ws.messages.setdefault(upload.channel_id, []).append(message)
        out.append({"id": upload.file_id, "name": upload.filename, "title": upload.title, "size": upload.length,
                    "user": BOT_USER_ID, "channels": [upload.channel_id] if upload.channel_id else []})
    return {"ok": True, "files": out}


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
}

QUIET = frozenset({"auth.test", "users.info", "users.lookupByEmail", "users.list", "usergroups.list",
                   "usergroups.users.list"})  # reads: logged, but not shown unless asked for


def summary(method: str, args: dict[str, Any]) -> str:
    """A one-line description of a call for the side panel."""
    target = args.get("channel") or args.get("user_id") or args.get("user") or args.get("view_id") or ""
    if method.startswith("views."):
        view = args.get("view") if isinstance(args.get("view"), dict) else {}
        title = ((view or {}).get("title") or {}).get("text") or (view or {}).get("type", "")
        return f"{title} {target}".strip()
    text = str(args.get("text") or "")
    return f"{target} {text[:80]}".strip()


def call(ws: Workspace, method: str, args: dict[str, Any], token: str | None) -> dict[str, Any]:
    """Answer one Web API call like Slack and log it."""
    with ws.lock:
        try:
            if not token:
                raise SlackError("not_authed")
            if not token.startswith("xoxb-"):
                raise SlackError("invalid_auth")
            implementation = METHODS.get(method)
            if implementation is None:
                raise SlackError("unknown_method")
            body = implementation(ws, decode_json_fields(args))
        except SlackError as exc:
            body = exc.body
    shown = {k: v for k, v in args.items() if k != "token"}
    ws.record("api-read" if method in QUIET else "api", method,
              summary(method, shown) + ("" if body.get("ok") else f" → {body.get('error')}"),
              {"request": shown, "response": _without_private(body)}, ok=bool(body.get("ok")),
              notify=method not in QUIET)
    return _without_private(body)


def _without_private(body: dict[str, Any]) -> dict[str, Any]:
    view = body.get("view")
    if isinstance(view, dict) and "_user" in view:
        return dict(body, view={k: v for k, v in view.items() if k != "_user"})
    return body
