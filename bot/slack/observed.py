"""What the Slack edge logs: one line per handled delivery with its context, and refused signatures, quietly.

:class:`ObservedApp` (a Bolt ``App``) opens a log context for each delivery, HTTP or Socket Mode; its global
middleware :func:`bind_delivery` runs after the signature check and binds ``delivery_id``, ``user_id``, ``action``
and ``request_id`` (see :mod:`bot.logs`), so everything the listeners log carries them; one line says the delivery
was handled. (Bolt runs global middleware before the listeners, not around them, hence the scope in ``dispatch``.)
It also hands listeners a metered copy of the app's client (:mod:`bot.slack.metered`), where Bolt would build a
plain ``WebClient`` per request.

:class:`SignatureRefusals` is what the HTTP server logs when Bolt refuses a request's signature (401): one line
without body, signature or ``response_url``, at most once a minute, saying how many more were refused meanwhile.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from slack_bolt import App
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from bot.logs import RateLimitedLog, bind, current_context, log_context
from bot.slack.listeners import Answering, ListenerPool, SlottedAck
from bot.slack.metered import MeteredWebClient

log = logging.getLogger("bot.slack")
_ID = re.compile(r"^\d{1,12}$")


def delivery_fields(body: dict[str, Any]) -> dict[str, str | None]:
    """``user_id``, ``action`` and the access ``request_id`` where the payload says them; plain values only."""
    user = body.get("user_id") or (body.get("user") or {}).get("id") or (body.get("event") or {}).get("user")
    action: str | None = None
    request_id: str | None = None
    if "command" in body:
        words = str(body.get("text") or "").split()
        action = " ".join([str(body["command"]), *words[:1]])
        request_id = words[1] if len(words) > 1 and _ID.match(words[1]) else None
    elif body.get("type") in ("block_actions", "block_suggestion"):
        actions = body.get("actions") or [body]
        first = actions[0] if actions else {}
        action = first.get("action_id")
        value = str(first.get("value") or "")
        request_id = value if _ID.match(value) else None
    elif body.get("type") in ("view_submission", "view_closed"):
        view = body.get("view") or {}
        action = view.get("callback_id")
        metadata = str(view.get("private_metadata") or "")
        request_id = metadata if _ID.match(metadata) else None
    elif body.get("type") == "event_callback":
        action = f"event {(body.get('event') or {}).get('type')}"
    return {"user_id": user if isinstance(user, str) else None, "action": action, "request_id": request_id}


def bind_delivery(body: dict[str, Any], next: Callable[[], None]) -> None:  # noqa: A002 — Bolt's name
    """Bolt global middleware (``app.use``): binds what the delivery is about for the log lines that follow."""
    bind(delivery_id=body.get("event_id") or body.get("trigger_id") or uuid.uuid4().hex[:16], **delivery_fields(body))
    next()


class ObservedApp(App):
    """Bolt's ``App`` with a log context per delivery, metered clients and, with a :class:`ListenerPool` as its
    ``listener_executor``, acks that hand listeners to the pool's work slots; :attr:`answering` counts the
    deliveries being answered (background work steps aside for them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        executor = kwargs.get("listener_executor")
        self._listener_pool = executor if isinstance(executor, ListenerPool) else None
        self.answering = Answering()

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        started = time.monotonic()
        with self.answering.one(), log_context():
            response = super().dispatch(req)
            if "delivery_id" in current_context():  # verified and handled (a refusal is logged on its own)
                context = current_context()
                log.info("handled %s in %.0f ms (%d)", context.get("action") or req.body.get("type") or "a delivery",
                         (time.monotonic() - started) * 1000, response.status)
        return response

    def _init_context(self, req: BoltRequest) -> None:
        super()._init_context(req)
        if self._listener_pool is not None:
            req.context["ack"] = SlottedAck(self._listener_pool)
        plain = req.context.get("client")
        if isinstance(self._client, MeteredWebClient) and plain is not None and not isinstance(plain, MeteredWebClient):
            req.context["client"] = self._client.like(plain)


class SignatureRefusals:
    """One line for a refused (unsigned, mis-signed or stale) Slack request, at most once per ``every`` seconds for
    each kind of refusal (a flood of forged posts is one line a minute; a clock gone wrong still shows as itself).

    Bolt's own line for these (the whole body and signature, at INFO) is silenced in :mod:`bot.logs`; this one
    names the reason and the size, never the body, the signature or a ``response_url``.
    """

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self._logs: dict[str, RateLimitedLog] = {}

    def refused(self, *, timestamp: str, signature: str, size: int) -> bool:
        kind, why = _why(timestamp, signature)
        limited = self._logs.setdefault(kind, RateLimitedLog(log, every=self.every))
        return limited.log("refused a Slack request: %s (%d bytes)", why, size)


def _why(timestamp: str, signature: str) -> tuple[str, str]:
    """(the kind of refusal, what to say)."""
    if not signature:
        return "unsigned", "no signature (not from Slack)"
    try:
        skew = abs(time.time() - int(timestamp))
    except ValueError:
        return "timestamp", "no valid timestamp"
    if skew > 60 * 5:
        return "stale", f"stale timestamp ({skew:.0f} s old; a replay, or this host's clock is off)"
    return "mismatch", "the signature does not match (not from Slack, or the signing secret is not this app's)"
