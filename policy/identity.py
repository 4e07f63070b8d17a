"""A user's identity as the policy sees it: Slack id, email, groups, manager, on-call, attributes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Identity:
    """Everything the attribute conditions can look at, resolved at one moment.

    ``groups`` holds directory groups and (when enabled) Slack user-group handles; ``oncall`` the names of the
    schedules the user is on shift for right now; ``owner_of`` the integrations the user owns (the ``owner``
    attribute of approver conditions is evaluated against the request's integrations).
    """

    slack_id: str | None
    email: str | None
    groups: frozenset[str] = frozenset()
    manager: str | None = None
    oncall: frozenset[str] = frozenset()
    attributes: Mapping[str, str] = field(default_factory=dict)
    owner_of: frozenset[str] = frozenset()
    deactivated: bool = False
    is_bot: bool = False
    timezone: str | None = None
    display_name: str | None = None
    ids: frozenset[str] = field(init=False, repr=False, compare=False)
    _match_key: str | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Every way this user can be named in a condition's ``user`` attribute; computed once (hot path).
        object.__setattr__(self, "ids", frozenset(v.lower() for v in (self.slack_id, self.email) if v))

    @property
    def match_key(self) -> str:
        """Everything a requestor, grantee or space condition can look at, as one string; computed once.

        Not ``owner_of``: ``owner`` is an approver attribute. Two identities with the same key match the same
        requestor, grantee and space conditions. A string (the ``repr`` of those values, sets sorted) rather
        than a tuple so that a cache keyed by it hashes once per identity, not once per lookup.
        """
        key = self._match_key
        if key is None:
            key = repr(
                (
                    self.slack_id,
                    self.email,
                    sorted(self.groups),
                    self.manager,
                    sorted(self.oncall),
                    sorted(self.attributes.items()),
                    self.deactivated,
                    self.is_bot,
                )
            )
            object.__setattr__(self, "_match_key", key)
        return key

    @property
    def key(self) -> str:
        """The stable key of a person in the store: the Slack id, else the email."""
        return self.slack_id or self.email or "unknown"

    def same_person(self, other: Identity) -> bool:
        return bool(self.ids & other.ids)

    def label(self) -> str:
        return self.display_name or self.email or self.slack_id or "unknown user"
