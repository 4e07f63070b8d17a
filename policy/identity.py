"""A user's identity as the policy sees it: Slack id, email, groups, manager, on-call, attributes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


class MatchKey:
    """Values of an identity, compared as a tuple of them and hashed once (:attr:`Identity.match_key`).

    A cache keyed by it reads one stored number per lookup rather than hashing every value again.
    """

    __slots__ = ("values", "_hash")

    def __init__(self, values: tuple[object, ...]) -> None:
        self.values = values
        self._hash = hash(values)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (
            isinstance(other, MatchKey) and self._hash == other._hash and self.values == other.values
        )

    def __repr__(self) -> str:
        return f"MatchKey({self.values!r})"


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
    _match_key: MatchKey | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Every way this user can be named in a condition's ``user`` attribute; computed once (hot path).
        object.__setattr__(self, "ids", frozenset(v.lower() for v in (self.slack_id, self.email) if v))

    @property
    def match_key(self) -> MatchKey:
        """Everything a requestor, grantee or space condition can look at; computed once.

        Not ``owner_of``: ``owner`` is an approver attribute. Two identities with the same key match the same
        requestor, grantee and space conditions.
        """
        key = self._match_key
        if key is None:
            values: list[object] = [
                self.slack_id,
                self.email,
                self.groups,
                self.manager,
                self.oncall,
                self.deactivated,
                self.is_bot,
            ]
            for item in sorted(self.attributes.items()):
                values += item  # name, value, name, value, …: one tuple, not one per attribute
            key = MatchKey(tuple(values))
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
