"""The connector protocol and the registry of connector types.

A connector is told what to grant; it never touches the store. Every operation is idempotent and safe to
retry: granting an existing grant, extending to the same time, or revoking a grant that is already gone
succeeds without doing anything twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from policy.resources import Permission, Resource


@dataclass(frozen=True, slots=True)
class GrantSpec:
    """What one grant is: a grantee holding a permission on a resource until ``expires_at``."""

    grant_id: int
    request_id: int
    grantee_slack_id: str
    grantee_email: str | None
    integration: str
    resource: Resource
    permission: Permission
    expires_at: datetime | None  # None = indefinite; always timezone-aware UTC otherwise
    external_ref: str | None = None  # what the connector returned on grant (e.g. the role name)

    def as_json(self) -> dict[str, Any]:
        """The grant as plain JSON (for webhooks): no secrets."""
        return {
            "id": self.grant_id,
            "request_id": self.request_id,
            "grantee": {"slack_id": self.grantee_slack_id, "email": self.grantee_email},
            "integration": self.integration,
            "resource": {
                "type": self.resource.type,
                "name": self.resource.name,
                "path": self.resource.path,
                "source_id": self.resource.source_id,
                "tags": dict(self.resource.tags),
            },
            "permission": self.permission.name,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


def idempotency_key(action: str, grant_id: int, until: datetime | None = None) -> str:
    """The idempotency key of a connector call: ``grant-<id>-grant``, ``grant-<id>-revoke``, and for an
    extension ``grant-<id>-extend-<until as unix seconds, or "indefinite">`` (each extension is its own call).

    The same call made again (a retry, or a repeat after a crash) carries the same key, so a receiver that
    dedupes by it acts once; the bot records each key's calls (``store.connector_calls``).
    """
    if action == "extend":
        return f"grant-{grant_id}-extend-{int(until.timestamp()) if until is not None else 'indefinite'}"
    return f"grant-{grant_id}-{action}"


@dataclass(frozen=True, slots=True)
class GrantResult:
    """What a grant produced: a reference to revoke it by, and credentials for the grantee's DM only."""

    external_ref: str | None = None
    credentials: Mapping[str, str] = field(default_factory=dict)
    note: str = ""  # shown to the grantee (e.g. "connect with psql ..."); never a secret


class ConnectorError(Exception):
    """A connector operation failed; the message says what failed (never a secret). Retried by the scheduler."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@runtime_checkable
class Connector(Protocol):
    name: str
    # True when grants of the same resource, permission and grantee share one access at the target (a user
    # group membership): the revoke is then skipped while another live grant still provides it (SPEC §5)
    shared_access: bool

    def catalog(self) -> list[Resource]: ...

    def grant(self, grant: GrantSpec) -> GrantResult: ...

    def extend(self, grant: GrantSpec, until: datetime | None) -> None: ...

    def revoke(self, grant: GrantSpec) -> None: ...


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    """What a connector factory gets besides its config: the environment (for secrets), a Slack client, and
    this installation's id (generated once, kept in the bot's database), which connectors put in the names and
    labels of what they create so that two installations sharing a target never touch each other's."""

    env: Mapping[str, str]
    slack_client: Any = None  # slack_sdk.WebClient when the Slack layer is wired
    installation_id: str | None = None  # None: not wired (connectors that need it refuse to be built)


ConnectorFactory = Callable[[Any, ConnectorContext], Connector]  # (integration config model, context)

_REGISTRY: dict[str, ConnectorFactory] = {}


def register_connector(type_name: str) -> Callable[[ConnectorFactory], ConnectorFactory]:
    def decorate(factory: ConnectorFactory) -> ConnectorFactory:
        _REGISTRY[type_name] = factory
        return factory

    return decorate


BUILTIN_CONNECTORS = ("noop", "postgresql", "slack_usergroup", "webhook")  # type name = module name


def connector_factory(type_name: str) -> ConnectorFactory:
    _load_builtin_connector(type_name)
    try:
        return _REGISTRY[type_name]
    except KeyError:
        raise ConnectorError(f"no connector of type {type_name!r}", retryable=False) from None


def _load_builtin_connector(type_name: str) -> None:
    """Import the built-in connector module of ``type_name`` so it registers itself — only that one: a bot
    without a PostgreSQL integration never loads psycopg's driver for it (~20 MB of a serving process)."""
    if type_name in BUILTIN_CONNECTORS and type_name not in _REGISTRY:
        import importlib

        importlib.import_module(f"integrations.{type_name}")


@dataclass
class UnavailableConnector:
    """Stands in for a connector that could not be built (a missing secret, say), so the bot still starts.

    Its resources stay requestable from the static config; every grant, extend and revoke fails with the reason,
    and the scheduler retries it, so access is granted (or revoked) once an admin fixes the setting and the
    configuration is reloaded.
    """

    shared_access = False  # nothing is granted through it

    name: str
    reason: str

    def catalog(self) -> list[Resource]:
        raise ConnectorError(f"integration {self.name} is unavailable: {self.reason}")

    def grant(self, grant: GrantSpec) -> GrantResult:
        raise ConnectorError(f"integration {self.name} is unavailable: {self.reason}")

    def extend(self, grant: GrantSpec, until: datetime | None) -> None:
        raise ConnectorError(f"integration {self.name} is unavailable: {self.reason}")

    def revoke(self, grant: GrantSpec) -> None:
        raise ConnectorError(f"integration {self.name} is unavailable: {self.reason}")
