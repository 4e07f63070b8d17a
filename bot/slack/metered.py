"""Slack Web API calls counted for ``/metrics``: by method and outcome, with latency.

:class:`MeteredWebClient` is a ``slack_sdk.WebClient`` whose ``api_call`` (through which every method goes)
records ``accessbot_slack_api_calls_total{method, outcome}`` and ``accessbot_slack_api_call_seconds{method}``.
The outcome is ``ok``, Slack's error code (``ratelimited``, ``channel_not_found``, …; a bounded set Slack
documents), or ``unreachable`` when no answer came.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Histogram
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

SLACK_CALLS = Counter("accessbot_slack_api_calls", "Slack Web API calls, by method and outcome",
                      ["method", "outcome"])
SLACK_SECONDS = Histogram("accessbot_slack_api_call_seconds", "Slack Web API call latency", ["method"],
                          buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


def outcome_of(error: Exception) -> str:
    if isinstance(error, SlackApiError):
        code = error.response.get("error") if error.response is not None else None
        return str(code or f"http_{error.response.status_code}")
    return "unreachable"


class MeteredWebClient(WebClient):
    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:  # type: ignore[override]
        started = time.monotonic()
        try:
            response = super().api_call(api_method, **kwargs)
        except Exception as exc:
            SLACK_CALLS.labels(api_method, outcome_of(exc)).inc()
            raise
        finally:
            SLACK_SECONDS.labels(api_method).observe(time.monotonic() - started)
        SLACK_CALLS.labels(api_method, "ok").inc()
        return response

    def like(self, other: WebClient) -> MeteredWebClient:
        """A metered copy of ``other`` (Bolt builds a plain client per request; this keeps it counted)."""
        return MeteredWebClient(
            token=other.token, base_url=other.base_url, timeout=other.timeout, ssl=other.ssl, proxy=other.proxy,
            headers=other.headers, team_id=getattr(other, "team_id", None), logger=other.logger,
            retry_handlers=other.retry_handlers,
        )
