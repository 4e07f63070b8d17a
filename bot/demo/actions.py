"""What a person does on the page, sent to the bot as Slack would send it (signed, over its HTTP endpoint).

Each method builds the payload (:mod:`bot.demo.payloads`), POSTs it to the bot, logs it in the side panel,
and applies the bot's answer the way Slack does: options for a type-ahead, ``response_action`` for a modal
(errors, update, push, clear; a plain ack closes the modal), nothing for the rest (the bot's Web API calls
and ``response_url`` posts arrive on their own).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from bot.demo import payloads, webapi
from bot.demo.blockkit import options_problems
from bot.demo.payloads import FORM, Reply
from bot.demo.workspace import SlackError, Workspace


class PageError(Exception):
    """A page action that cannot be done (unknown view, a message that is gone); shown on the page."""


@dataclass
class PageActions:
    ws: Workspace
    bot_endpoint: str  # http://127.0.0.1:PORT/slack/events
    signing_secret: str
    hooks: dict[str, dict[str, Any]] = field(default_factory=dict)  # response_url id -> where it answers
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- transport ----------------------------------------------------------------------------------------

    def _send(self, label: str, body: bytes, content_type: str, shown: Any) -> Reply:
        reply = payloads.post(self.bot_endpoint, self.signing_secret, body, content_type)
        ok = 200 <= reply.status < 300
        self.ws.record("payload", f"→ bot: {label}", f"HTTP {reply.status}",
                       {"payload": shown, "reply": reply.body}, ok=ok)
        if not ok:
            raise PageError(f"the bot answered HTTP {reply.status} to {label}")
        return reply

    def _send_payload(self, label: str, payload: dict[str, Any]) -> Reply:
        return self._send(label, payloads.form(payload), FORM, payload)

    def response_url(self, user_id: str, channel_id: str, message_ts: str | None = None) -> str:
        hook = str(next(self._serial))
        self.hooks[hook] = {"user": user_id, "channel": channel_id, "message_ts": message_ts}
        return f"{self.ws.base_url}hooks/{hook}"

    def _view(self, view_id: str) -> dict[str, Any]:
        view = self.ws.views.get(view_id)
        if view is None:
            raise PageError(f"no view {view_id}")
        return view

    # --- what the page does -------------------------------------------------------------------------------

    def command(self, user_id: str, text: str, channel_id: str) -> None:
        self.ws.user(user_id)
        body = payloads.command(user_id, text, channel_id=channel_id, trigger_id=self.ws.new_trigger(user_id),
                                response_url=self.response_url(user_id, channel_id))
        self._send(f"/access {text}".strip(), body, FORM, {"command": "/access", "text": text, "user_id": user_id,
                                                          "channel_id": channel_id})

    def click(self, user_id: str, container: dict[str, Any], action: dict[str, Any],
              values: dict[str, Any] | None = None) -> None:
        trigger = self.ws.new_trigger(user_id)
        if container.get("type") == "view":
            view = self._view(str(container.get("view_id")))
            payload = payloads.view_action(user_id, view, values or {}, action, trigger)
        else:
            channel, ts = str(container.get("channel_id")), str(container.get("message_ts"))
            try:
                message = self.ws.find_message(channel, ts)
            except SlackError:
                raise PageError("that message is gone") from None
            payload = payloads.message_action(user_id, channel, message, action, trigger,
                                              self.response_url(user_id, channel, ts),
                                              channel_name=self.ws.channel_names.get(channel, "").lstrip("#") or None)
        self._send_payload(f"block_actions {action.get('action_id')}", payload)

    def suggest(self, user_id: str, view_id: str, action_id: str, block_id: str, value: str,
                values: dict[str, Any] | None = None) -> dict[str, Any]:
        view = self._view(view_id)
        reply = self._send_payload(f"block_suggestion {action_id} “{value}”",
                                   payloads.suggestion(user_id, view, values or {}, action_id, block_id, value))
        body = reply.body if isinstance(reply.body, dict) else {}
        problems = options_problems(body)
        if problems:  # Slack shows no options for an answer it cannot read; the panel says why
            self.ws.record("payload", f"options for {action_id} refused", "; ".join(problems),
                           {"reply": body, "problems": problems}, ok=False)
            return {"options": [], "option_groups": [], "error": "; ".join(problems)}
        return {"options": body.get("options") or [], "option_groups": body.get("option_groups") or []}

    def submit(self, user_id: str, view_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """The modal's submit button; returns ``{"errors": {block_id: text}}`` when the bot refused it."""
        view = self._view(view_id)
        reply = self._send_payload(f"view_submission {view.get('callback_id')}",
                                   payloads.submission(user_id, view, values, self.ws.new_trigger(user_id)))
        answer = reply.body if isinstance(reply.body, dict) else {}
        action = answer.get("response_action")
        with self.ws.lock:
            stack = self.ws.modal_stacks.setdefault(user_id, [])
            if action == "errors":
                return {"errors": answer.get("errors") or {}}
            if action in ("update", "push"):
                try:
                    current = view if action == "update" else None
                    stored = webapi._store_view(self.ws, answer.get("view"), current=current)
                except SlackError as exc:
                    raise PageError(f"the bot answered with an invalid view: {exc.body}") from None
                stored["_user"] = user_id
                if action == "push":
                    stack.append(stored["id"])
            elif action == "clear":
                stack.clear()
            elif view_id in stack:
                stack.remove(view_id)
        self.ws.changed()
        return {}

    def close(self, user_id: str, view_id: str) -> None:
        view = self._view(view_id)
        with self.ws.lock:
            stack = self.ws.modal_stacks.get(user_id) or []
            if view_id in stack:
                stack.remove(view_id)
        self.ws.changed()
        if view.get("notify_on_close"):
            self._send_payload(f"view_closed {view.get('callback_id')}", payloads.closed(user_id, view))

    def open_home(self, user_id: str) -> None:
        self.ws.user(user_id)
        body = payloads.event({"type": "app_home_opened", "user": user_id, "channel": "D" + user_id, "tab": "home"},
                              self.ws.next_serial())
        self._send("event app_home_opened", body, "application/json", {"event": "app_home_opened",
                                                                       "user": user_id})

    # --- the bot's answers through a response_url ---------------------------------------------------------

    def respond(self, hook: str, body: dict[str, Any]) -> bool:
        target = self.hooks.get(hook)
        if target is None:
            return False
        message: dict[str, Any] = {k: body[k] for k in ("text", "blocks") if k in body}
        original = {"channel": target["channel"], "ts": target["message_ts"]}
        if body.get("delete_original") and target["message_ts"]:  # what Slack does with each kind of answer
            method, args = "chat.delete", original
        elif body.get("replace_original") and target["message_ts"]:
            method, args = "chat.update", {**original, **message}
        elif body.get("response_type") == "in_channel":
            method, args = "chat.postMessage", {"channel": target["channel"], **message}
        else:
            method, args = "chat.postEphemeral", {"channel": target["channel"], "user": target["user"], **message}
        with self.ws.lock:
            webapi.METHODS[method](self.ws, args)
        self.ws.record("api", "response_url", f"{target['user']} {str(body.get('text') or '')[:80]}",
                       {"request": body, "target": target})
        return True
