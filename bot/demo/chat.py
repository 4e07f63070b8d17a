"""The demo's ``chat.*`` and ``conversations.open``: messages in DMs and channels, threads, ephemeral messages.

A message posted with ``thread_ts`` is a reply in that thread, as in Slack: filed under the thread's root (a
reply to a reply joins the root's thread), the root counting its replies (``reply_count``, ``reply_users``,
``latest_reply``); an edit keeps a message where it is.
"""

from __future__ import annotations

from typing import Any

from bot.demo.apiargs import flag, require
from bot.demo.blockkit import message_problems
from bot.demo.workspace import APP_ID, BOT_ID, BOT_USER_ID, TEAM_ID, SlackError, Workspace


def check_message(args: dict[str, Any]) -> None:
    if not args.get("text") and not args.get("blocks") and not args.get("attachments"):
        raise SlackError("no_text")
    if len(str(args.get("text") or "")) > 40_000:
        raise SlackError("msg_too_long")
    if "blocks" in args:
        problems = message_problems(args["blocks"])
        if problems:
            raise SlackError("invalid_blocks", messages=problems)


def message_of(ws: Workspace, args: dict[str, Any], ts: str) -> dict[str, Any]:
    message = {"type": "message", "text": args.get("text") or "", "user": BOT_USER_ID, "bot_id": BOT_ID,
               "app_id": APP_ID, "team": TEAM_ID, "ts": ts, "at": ws.now().isoformat()}
    for key in ("blocks", "attachments", "metadata", "thread_ts"):
        if key in args:
            message[key] = args[key]
    if flag(args, "reply_broadcast") and "thread_ts" in args:
        message["subtype"] = "thread_broadcast"
    return message


THREAD_FIELDS = ("thread_ts", "parent_user_id", "reply_count", "reply_users", "reply_users_count", "latest_reply",
                 "subtype")


def _thread_root(ws: Workspace, channel: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """The root of the thread a ``thread_ts`` names (a reply to a reply joins the root's thread, as in Slack).

    Slack accepts a ``thread_ts`` that names no message of the channel; such a message has no thread to join
    and the page shows it at the top level.
    """
    if not args.get("thread_ts"):
        return None
    try:
        parent = ws.find_message(channel, str(args["thread_ts"]))
        root = parent if parent.get("thread_ts") in (None, parent["ts"]) else ws.find_message(channel,
                                                                                             parent["thread_ts"])
    except SlackError:
        return None
    args["thread_ts"] = root["ts"]
    return root


def _count_reply(root: dict[str, Any], reply: dict[str, Any]) -> None:
    """What Slack keeps on a thread's root: its replies' count, who replied, the latest reply."""
    users = list(dict.fromkeys([*root.get("reply_users", []), reply["user"]]))
    reply["parent_user_id"] = root["user"]
    root.update(thread_ts=root["ts"], reply_count=int(root.get("reply_count", 0)) + 1, reply_users=users,
                reply_users_count=len(users), latest_reply=reply["ts"])


def chat_post_message(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = ws.channel(args.get("channel"))
    check_message(args)
    root = _thread_root(ws, channel, args)
    message = message_of(ws, args, ws.next_ts())
    if root is not None:
        _count_reply(root, message)
    ws.messages.setdefault(channel, []).append(message)
    return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}


def chat_update(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = ws.channel(args.get("channel"))
    current = ws.find_message(channel, str(require(args, "ts", "message_not_found")))
    check_message(args)
    updated = message_of(ws, {k: v for k, v in args.items() if k not in ("thread_ts", "reply_broadcast")},
                       current["ts"])
    updated.update({k: current[k] for k in (*THREAD_FIELDS, "at") if k in current})  # an edit stays in its thread
    updated["edited"] = {"user": BOT_USER_ID, "ts": ws.next_ts(), "at": ws.now().isoformat()}
    current.clear()
    current.update(updated)  # in place: the conversation keeps its order
    return {"ok": True, "channel": channel, "ts": updated["ts"], "text": updated["text"], "message": updated}


def chat_delete(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = ws.channel(args.get("channel"))
    message = ws.find_message(channel, str(require(args, "ts", "message_not_found")))
    ws.messages[channel].remove(message)
    if message.get("thread_ts") not in (None, message["ts"]):  # a reply: its thread counts one fewer
        try:
            root = ws.find_message(channel, str(message["thread_ts"]))
        except SlackError:
            root = {}
        if root.get("reply_count"):
            root["reply_count"] -= 1
    return {"ok": True, "channel": channel, "ts": message["ts"]}


def chat_post_ephemeral(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = ws.channel(args.get("channel"))
    user = str(ws.user(require(args, "user", "user_not_found"))["id"])
    check_message(args)
    _thread_root(ws, channel, args)
    message = message_of(ws, args, ws.next_ts())
    ws.ephemerals.append({"channel": channel, "user": user, "message": message})
    return {"ok": True, "message_ts": message["ts"]}


def conversations_open(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    if args.get("channel"):
        return {"ok": True, "no_op": True, "already_open": True, "channel": {"id": str(args["channel"])}}
    users = [u.strip() for u in str(require(args, "users", "users_list_not_supplied")).split(",") if u.strip()]
    if len(users) != 1:
        raise SlackError("not_supported", messages=["the demo workspace has only DMs with the bot"])
    return {"ok": True, "no_op": False, "already_open": False, "channel": {"id": ws.channel(users[0])}}
