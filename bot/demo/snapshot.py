"""What the page shows, as one JSON object: people, conversations, modals, App Home, requests, the log."""

from __future__ import annotations

from typing import Any

from bot.demo.timecontrol import next_due
from bot.demo.workspace import BOT_USER_ID, Workspace
from bot.runtime import Runtime


def _public(view: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if view is None else {k: v for k, v in view.items() if k != "_user"}


def people(ws: Workspace, runtime: Runtime) -> list[dict[str, Any]]:
    """The workspace's people as the bot sees them now: groups (with Slack user groups) and on-call shifts."""
    now = runtime.container.clock.now()
    out = []
    for user in list(ws.users.values()):
        if user["id"] == BOT_USER_ID:
            continue
        who = runtime.container.directory.identity(user["id"], now)
        out.append({"id": user["id"], "name": user["name"], "real_name": user["real_name"],
                    "email": user["profile"].get("email"), "groups": sorted(who.groups), "oncall": sorted(who.oncall),
                    "manager": who.manager})
    return out


def requests(runtime: Runtime) -> list[dict[str, Any]]:
    records = runtime.container.service.list(limit=20)
    return [{"id": r.id, "state": r.state, "flow": r.flow_name, "requester": r.requester_email or r.requester_id,
             "permission": r.permission, "resources": list(r.resource_names),
             "expires_at": r.expires_at.isoformat() if r.expires_at else None,
             "grants": [{"id": g.id, "state": g.state, "grantee": g.grantee_email or g.grantee_id,
                         "expires_at": g.expires_at.isoformat() if g.expires_at else None} for g in r.grants]}
            for r in records]


def snapshot(ws: Workspace, runtime: Runtime | None, user_id: str, log_after: int) -> dict[str, Any]:
    with ws.lock:
        channels = []
        dm = "D" + user_id
        ids = [dm] + sorted({c for c in [*ws.messages, *ws.channel_names] if c[:1] in "CG"})
        for channel in dict.fromkeys(ids):
            channels.append({
                "id": channel,
                "name": "accessbot" if channel == dm else ws.channel_names.get(channel, f"#{channel.lower()}"),
                "kind": "dm" if channel == dm else "channel",
                "messages": list(ws.messages.get(channel, [])),
                "ephemerals": [e["message"] for e in ws.ephemerals if e["channel"] == channel and e["user"] == user_id],
            })
        modals = [_public(ws.views.get(v)) for v in ws.modal_stacks.get(user_id, [])]
        home = _public(ws.views.get(ws.home_views.get(user_id, "")))
        log = [entry for entry in ws.log if entry["seq"] > log_after]
        version = ws.version
        usergroups = [{"handle": g["handle"], "users": list(g["users"])} for g in ws.usergroups.values()]
    state: dict[str, Any] = {"version": version, "me": user_id, "channels": channels, "modals": modals,
                             "home": home, "log": log, "usergroups": usergroups}
    if runtime is not None:
        clock: Any = runtime.container.clock  # a DatabaseClock: the host clock plus the demo's offset
        state["now"] = clock.now().isoformat()
        state["offset_seconds"] = clock.offset.total_seconds()
        state["people"] = people(ws, runtime)
        state["requests"] = requests(runtime)
        db = runtime.container.db
        state["next"] = {kind: (due.isoformat() if (due := next_due(db, kind)) else None)
                         for kind in ("escalate", "remind", "expire", "timeout")}
    return state
