"""Slack user group connector: a grant is membership of a user group.

Resources are user groups named by their handle (``{type: usergroup, name: incident-commanders}``; a leading
``@`` is ignored). Slack has no "add one member" call: ``usergroups.users.update`` replaces the whole list, so
the connector reads the current members, adds or removes only the grantee and writes the list back. Within
one connector those read-modify-write cycles are serialized; across processes a concurrent edit of the same
group by someone else between the read and the write can be lost (Slack offers nothing better).

Both operations are idempotent: granting a member or revoking a non-member changes nothing. Revoking removes
the grantee even if they were a member before the grant, so do not grant a group to its permanent members;
and the lifecycle service must not revoke while another active grant of the same grantee needs the group.
Slack memberships do not expire, so ``extend`` has nothing to do.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from integrations.base import ConnectorContext, ConnectorError, GrantResult, GrantSpec, register_connector
from policy.resources import Resource

log = logging.getLogger(__name__)

T = TypeVar("T")

# Slack errors a later retry can cure; anything else (missing_scope, invalid_users, ...) needs a human.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class SlackUsergroupConnector:
    """Adds the grantee to a Slack user group on grant and removes only them on revoke."""

    shared_access = True  # one membership serves every grant of the group

    def __init__(self, name: str, client: WebClient, resources: Iterable[Resource]) -> None:
        self.name = name
        self._client = client
        self._resources = list(resources)
        self._group_ids: dict[str, str] = {}  # handle -> usergroup id, filled from usergroups.list
        self._lock = threading.Lock()  # one read-modify-write of a member list at a time

    def catalog(self) -> list[Resource]:
        return list(self._resources)

    def grant(self, grant: GrantSpec) -> GrantResult:
        """Make the grantee a member of the group, keeping every other member."""
        handle = _handle(grant.resource)
        user = grant.grantee_slack_id

        def add(group_id: str) -> None:
            members = self._members(group_id, handle)
            if user in members:
                return
            updated = self._call(
                f"add {user} to",
                handle,
                lambda: self._client.usergroups_users_update(usergroup=group_id, users=[*members, user]),
            )
            now_members = (updated.get("usergroup") or {}).get("users")
            if isinstance(now_members, list) and user not in now_members:
                raise ConnectorError(
                    f"slack_usergroup {self.name}: Slack did not add {user} to @{handle} (deactivated user?)",
                    retryable=False,
                )

        group_id = self._on_group(handle, grant.external_ref, add)
        log.info(
            "slack_usergroup %s: %s is a member of @%s (grant %s)", self.name, user, handle, grant.grant_id
        )
        return GrantResult(external_ref=group_id, note=f"You are a member of the Slack user group @{handle}.")

    def extend(self, grant: GrantSpec, until: datetime | None) -> None:
        """Nothing to do: Slack group memberships have no expiry; the revoke at the new time ends it."""

    def revoke(self, grant: GrantSpec) -> None:
        """Remove the grantee (only them) from the group; a non-member is left alone."""
        handle = _handle(grant.resource)
        user = grant.grantee_slack_id

        def remove(group_id: str) -> None:
            members = self._members(group_id, handle)
            if user not in members:
                return
            remaining = [m for m in members if m != user]
            # Slack refuses an empty list ("" answers invalid_users); the literal "[]" empties the group.
            users: str | list[str] = remaining or "[]"
            self._call(
                f"remove {user} from",
                handle,
                lambda: self._client.usergroups_users_update(usergroup=group_id, users=users),
            )

        self._on_group(handle, grant.external_ref, remove)
        log.info(
            "slack_usergroup %s: %s removed from @%s (grant %s)", self.name, user, handle, grant.grant_id
        )

    # --- helpers ------------------------------------------------------------------------------------------

    def _on_group(self, handle: str, known_id: str | None, operation: Callable[[str], None]) -> str:
        """Run ``operation(group_id)`` under the lock; if the id is stale, resolve the handle again once."""
        with self._lock:
            group_id = known_id or self._group_id(handle, refresh=False)
            try:
                operation(group_id)
            except _StaleGroup:
                self._group_ids.pop(handle, None)
                group_id = self._group_id(handle, refresh=True)
                try:
                    operation(group_id)
                except _StaleGroup:
                    raise self._missing(handle) from None
            return group_id

    def _group_id(self, handle: str, *, refresh: bool) -> str:
        if refresh or handle not in self._group_ids:
            listing = self._call(
                "list user groups for", handle, lambda: self._client.usergroups_list(include_disabled=True)
            )
            self._group_ids = {str(g["handle"]): str(g["id"]) for g in listing.get("usergroups") or []}
        try:
            return self._group_ids[handle]
        except KeyError:
            raise self._missing(handle) from None

    def _members(self, group_id: str, handle: str) -> list[str]:
        listing = self._call(
            "read members of",
            handle,
            lambda: self._client.usergroups_users_list(usergroup=group_id, include_disabled=True),
        )
        return [str(u) for u in listing.get("users") or []]

    def _missing(self, handle: str) -> ConnectorError:
        return ConnectorError(
            f"slack_usergroup {self.name}: no Slack user group with handle @{handle}", retryable=False
        )

    def _call(self, action: str, group: str, call: Callable[[], T]) -> T:
        """Run one Web API call, turning its failures into ConnectorError (429 and outages retryable)."""
        try:
            return call()
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "unknown_error")
            if error == "no_such_subteam":
                raise _StaleGroup from None
            status = exc.response.status_code
            retry_after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
            detail = f"HTTP {status}, {error}" + (f", retry after {retry_after}s" if retry_after else "")
            retryable = status == 429 or status >= 500 or error in TRANSIENT_ERRORS
            raise ConnectorError(
                f"slack_usergroup {self.name}: could not {action} @{group}: {detail}", retryable=retryable
            ) from None
        except (SlackClientError, OSError) as exc:  # connection refused, timeout, DNS, ...
            raise ConnectorError(
                f"slack_usergroup {self.name}: could not {action} @{group}: {type(exc).__name__}: {exc}"
            ) from None


class _StaleGroup(Exception):
    """Slack says the group id does not exist (deleted, or a stale cache entry)."""


def _handle(resource: Resource) -> str:
    return resource.name.removeprefix("@")


@register_connector("slack_usergroup")
def slack_usergroup_connector(config: Any, ctx: ConnectorContext) -> SlackUsergroupConnector:
    """Factory for ``type: slack_usergroup`` (config: name, catalog_resources(); uses ctx.slack_client)."""
    if ctx.slack_client is None:
        raise ConnectorError(f"slack_usergroup {config.name}: no Slack client is configured", retryable=False)
    return SlackUsergroupConnector(config.name, ctx.slack_client, config.catalog_resources())
