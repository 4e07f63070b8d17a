"""A connector that grants nothing outside accessbot: for trials, demos and tests.

It keeps an in-memory, thread-safe record of the operations it was asked to do, so a test can assert what the
lifecycle service did without a real system behind the integration.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from integrations.base import ConnectorContext, GrantResult, GrantSpec, register_connector
from policy.resources import Resource


class NoopConnector:
    """Records ``(operation, grant_id)`` for every call; grants return ``external_ref="noop:<grant_id>"``."""

    shared_access = False  # each grant is its own access

    def __init__(self, name: str, resources: Iterable[Resource]) -> None:
        self.name = name
        self._resources = list(resources)
        self._lock = threading.Lock()
        self._calls: list[tuple[str, int]] = []

    @property
    def calls(self) -> list[tuple[str, int]]:
        """A snapshot of the calls so far, oldest first: ``("grant" | "extend" | "revoke", grant_id)``."""
        with self._lock:
            return list(self._calls)

    def catalog(self) -> list[Resource]:
        return list(self._resources)

    def grant(self, grant: GrantSpec) -> GrantResult:
        self._record("grant", grant.grant_id)
        return GrantResult(external_ref=f"noop:{grant.grant_id}")

    def extend(self, grant: GrantSpec, until: datetime | None) -> None:
        self._record("extend", grant.grant_id)

    def revoke(self, grant: GrantSpec) -> None:
        self._record("revoke", grant.grant_id)

    def _record(self, operation: str, grant_id: int) -> None:
        with self._lock:
            self._calls.append((operation, grant_id))


@register_connector("noop")
def noop_connector(config: Any, ctx: ConnectorContext) -> NoopConnector:
    """Factory for ``type: noop`` integrations (config: ``name``, ``catalog_resources()``)."""
    return NoopConnector(config.name, config.catalog_resources())
