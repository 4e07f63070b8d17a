"""Connector calls counted for ``/metrics``: by integration, operation and outcome, with latency histograms.

:class:`MeteredConnector` wraps any connector (``bot.container.build_connectors`` applies it) and records
``accessbot_connector_calls_total{integration, operation, outcome}`` (``ok``, ``error`` for a
:class:`~integrations.base.ConnectorError`, ``exception`` for anything else) and
``accessbot_connector_call_seconds{integration, operation}``. Every other attribute (``shared_access``, a
connector's own extras) is the wrapped connector's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from prometheus_client import Counter, Histogram

from integrations.base import Connector, ConnectorError, GrantResult, GrantSpec
from policy.resources import Resource

CONNECTOR_CALLS = Counter("accessbot_connector_calls", "Connector calls, by integration, operation and outcome",
                          ["integration", "operation", "outcome"])
CONNECTOR_SECONDS = Histogram("accessbot_connector_call_seconds", "Connector call latency",
                              ["integration", "operation"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))

T = TypeVar("T")


class MeteredConnector:
    def __init__(self, inner: Connector) -> None:
        self.inner = inner
        self.name = inner.name

    def __getattr__(self, attribute: str) -> Any:  # only called for what this class does not define
        return getattr(self.inner, attribute)

    def _timed(self, operation: str, call: Callable[[], T]) -> T:
        started = time.monotonic()
        outcome = "exception"
        try:
            result = call()
            outcome = "ok"
            return result
        except ConnectorError:
            outcome = "error"
            raise
        finally:
            CONNECTOR_CALLS.labels(self.name, operation, outcome).inc()
            CONNECTOR_SECONDS.labels(self.name, operation).observe(time.monotonic() - started)

    def catalog(self) -> list[Resource]:
        return self._timed("catalog", self.inner.catalog)

    def grant(self, grant: GrantSpec) -> GrantResult:
        return self._timed("grant", lambda: self.inner.grant(grant))

    def extend(self, grant: GrantSpec, until: datetime | None) -> None:
        self._timed("extend", lambda: self.inner.extend(grant, until))

    def revoke(self, grant: GrantSpec) -> None:
        self._timed("revoke", lambda: self.inner.revoke(grant))


def unwrapped(connector: Connector) -> Connector:
    return connector.inner if isinstance(connector, MeteredConnector) else connector
