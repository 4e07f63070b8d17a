"""What the Bolt app needs before any listener runs, none of it waiting for Slack.

- :class:`BotIdentity`: the bot's own user id (``auth.test``), learnt once in the background, so no request ever
  waits for ``auth.test`` (Bolt's single-workspace authorization would call it on the first request).
- :func:`once_per_delivery`: an event (by ``event_id``) or a slash command (by ``trigger_id``) that Slack — or
  a proxy — delivers again (``X-Slack-Retry-Num``) is acknowledged and not acted on twice.
- :func:`web_client`: the Web API client, retrying rate limits after ``Retry-After`` and connection errors.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryState
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.slack.metered import MeteredWebClient

log = logging.getLogger(__name__)

RATE_LIMIT_RETRIES = 3  # each waits Slack's Retry-After
RATE_LIMIT_MAX_WAIT = 5  # seconds: a longer Retry-After is not waited for in the call (the outbox reschedules)
CONNECTION_RETRIES = 2
KEY_LIMIT = 100  # store.models.ProcessedEvent.event_id


class ShortRateLimitRetry(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (waits ``Retry-After``, then retries), for short waits only: a thread is not held
    for a long ``Retry-After``; the error reaches the caller (the outbox puts the row back for that long)."""

    def __init__(self, max_retry_count: int = RATE_LIMIT_RETRIES, max_wait: int = RATE_LIMIT_MAX_WAIT) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        if response is None or response.status_code != 429:
            return False
        values = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), ["1"])
        try:
            return int(values[0]) <= self.max_wait
        except (ValueError, IndexError):
            return True


def retry_after(error: SlackApiError) -> float | None:
    """The seconds Slack asked to wait before trying again (a 429's ``Retry-After``, at least 1), or None when the
    error is not a rate limit."""
    if getattr(error.response, "status_code", None) != 429:
        return None
    try:
        return max(float((error.response.headers or {}).get("Retry-After", 1) or 1), 1.0)
    except (TypeError, ValueError):
        return 1.0


def web_client(token: str | None, base_url: str, *, timeout: int = 15) -> WebClient:
    return MeteredWebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            ShortRateLimitRetry(),
            ConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
        ],
    )


class BotIdentity:
    """The bot token and, once ``auth.test`` has answered, the bot's user and bot ids (Bolt's ``authorize``)."""

    def __init__(self, client: WebClient, token: str | None, *, retry_every: float = 5.0,
                 known: dict[str, Any] | None = None) -> None:
        self.client = client
        self.token = token
        self.retry_every = retry_every
        self.result: dict[str, Any] | None = known or None  # the start-up check's auth.test answer
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._started or self.token is None or self.result is not None:
                return
            self._started = True
        threading.Thread(target=self._learn, name="slack-auth-test", daemon=True).start()

    def _learn(self) -> None:
        while self.result is None:
            try:
                self.result = dict(self.client.auth_test(token=self.token).data)  # type: ignore[arg-type]
            except SlackApiError as error:
                log.warning("auth.test failed (%s); retrying", error.response.get("error"))
            except Exception:  # noqa: BLE001 — Slack unreachable: keep serving, learn the ids later
                log.warning("auth.test could not reach Slack; retrying", exc_info=True)
            if self.result is None:
                time.sleep(self.retry_every)

    def authorize_function(self) -> Callable[..., AuthorizeResult]:
        """Bolt's ``authorize`` (a plain function: Bolt passes the arguments it names by keyword)."""

        def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            known = self.result or {}
            return AuthorizeResult(
                enterprise_id=enterprise_id,
                team_id=team_id or known.get("team_id"),
                bot_token=self.token,
                bot_user_id=known.get("user_id"),
                bot_id=known.get("bot_id"),
            )

        return authorize


def delivery_key(body: dict[str, Any]) -> str | None:
    """What identifies one delivery: an event's id, a slash command's trigger id (None for anything else)."""
    if body.get("type") == "event_callback" and body.get("event_id"):
        return f"ev:{body['event_id']}"[:KEY_LIMIT]
    if body.get("command") and body.get("trigger_id"):
        return f"cmd:{body['trigger_id']}"[:KEY_LIMIT]
    return None


Middleware = Callable[..., BoltResponse]


def once_per_delivery(first_delivery: Callable[[str], bool]) -> Middleware:
    """A Bolt middleware: a repeated delivery gets Slack's empty 200 and reaches no listener."""

    def middleware(req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:  # noqa: A002
        key = delivery_key(req.body)
        if key is not None and not first_delivery(key):
            retry = (req.headers.get("x-slack-retry-num") or ["?"])[0]
            log.info("a repeated Slack delivery (%s, retry %s) was acknowledged and ignored", key, retry)
            return BoltResponse(status=200, body="")
        return next()

    return middleware
