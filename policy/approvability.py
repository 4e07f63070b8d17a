"""Which approver groups no user of the directory can ever satisfy (``check-config`` warns about those flows).

The directory is indexed once per check: one identity per directory user (on every shift, owning what the
config says it owns), grouped by the index keys of :mod:`policy.conditions`. A condition set is then tried only
against the users that can match it, and each distinct condition set is tried once, however many flows and
approver groups repeat it.
"""

from __future__ import annotations

from collections.abc import Sequence

from policy.conditions import IndexKey, identity_keys, index_keys, matches
from policy.config import Approval, ConditionSet, Config
from policy.directory import DirectoryIndex
from policy.identity import Identity

ConditionKey = tuple[str, tuple[tuple[str, str, tuple[str, ...]], ...]]


def condition_key(group: ConditionSet) -> ConditionKey:
    """A hashable form of a condition set: two sets with the same key hold for the same identities."""
    return group.match, tuple((c.attribute, c.op, tuple(c.values)) for c in group.conditions)


class Approvability:
    """Answers "can anybody in the directory satisfy this approver group?" for one config."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._candidates: list[Identity] | None = None
        self._by_key: dict[IndexKey, list[int]] = {}
        self._all_integrations = frozenset(i.name for i in config.integrations)
        self._known: dict[ConditionKey, bool] = {}

    def failing_groups(self, approval: Approval) -> list[int]:
        """The indexes of the approval's groups nobody can satisfy; [] when Slack may know more users."""
        if approval.type != "approvers":
            return []
        if self._config.directory.slack_usergroups or any(mentions_slack_side(g) for g in approval.groups):
            return []
        return [i for i, group in enumerate(approval.groups) if not self.satisfiable(group)]

    def satisfiable(self, group: ConditionSet) -> bool:
        key = condition_key(group)
        known = self._known.get(key)
        if known is None:
            known = self._known[key] = self._search(group)
        return known

    def _search(self, group: ConditionSet) -> bool:
        candidates = self._identities()
        keys = index_keys(group)
        pool: Sequence[Identity]
        if keys is None:
            pool = candidates
        else:
            indexes = sorted({i for k in keys for i in self._by_key.get(k, ())})
            pool = [candidates[i] for i in indexes]
        owned = self._all_integrations
        return any(matches(group, identity, owned_integrations=owned) for identity in pool)

    def _identities(self) -> list[Identity]:
        if self._candidates is not None:
            return self._candidates
        directory = self._config.directory
        index = DirectoryIndex(directory)
        everyone_oncall = frozenset(s.schedule for s in directory.oncall)
        owners = {i.name: {o.lower() for o in i.owners} for i in self._config.integrations}
        candidates: list[Identity] = []
        for user in directory.users:
            # The entry that lookups find (the first of duplicates), as DirectoryIndex.build_identity uses it.
            entry = index.user(user.email) or index.user(user.slack_id) or user
            email = user.email.lower()
            identity = Identity(
                slack_id=user.slack_id or entry.slack_id,
                email=user.email,
                groups=frozenset(entry.groups),
                manager=entry.manager,
                oncall=everyone_oncall,
                attributes=dict(entry.attributes),
                owner_of=frozenset(name for name, emails in owners.items() if email in emails),
            )
            for key in identity_keys(identity):
                self._by_key.setdefault(key, []).append(len(candidates))
            candidates.append(identity)
        self._candidates = candidates
        return candidates


def mentions_slack_side(group: ConditionSet) -> bool:
    """Conditions on Slack ids or arbitrary attributes may match users the directory does not list."""
    return any(
        c.attribute not in {"group", "manager", "oncall", "owner"}
        and not (c.attribute == "user" and all("@" in v for v in c.values))
        for c in group.conditions
    )
