"""Catalog value types: the resources and permissions an integration exposes.

Pure data, shared by the catalog, the query language and the connectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Risk = Literal["low", "medium", "high", "critical"]
RISK_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource of an integration's catalog."""

    integration: str
    type: str
    name: str
    path: str = ""
    source_id: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    risk: Risk = "medium"
    key: str = field(init=False, repr=False, compare=False)
    """Stable identifier used in pickers and stored requests: ``integration/type/name`` (computed once)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.integration}/{self.type}/{self.name}")

    def tag(self, key: str) -> str | None:
        for k, v in self.tags:
            if k == key:
                return v
        return None

    @property
    def tag_map(self) -> dict[str, str]:
        return dict(self.tags)


@dataclass(frozen=True, slots=True)
class Permission:
    """A permission of an integration, e.g. ``read_only`` with the roles it maps to."""

    integration: str
    name: str
    risk: Risk = "medium"
    roles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Entitlement:
    """A (resource, permission) pair: the unit the query language filters and a grant gives."""

    resource: Resource
    permission: Permission
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def risk(self) -> Risk:
        """The higher of the resource's and the permission's risk."""
        a, b = self.resource.risk, self.permission.risk
        return a if RISK_ORDER[a] >= RISK_ORDER[b] else b
