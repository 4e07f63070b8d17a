"""Compiled flows and which of them an identity may use (SPEC §3, §5), found fast and remembered.

:class:`CompiledFlow` is one flow compiled for decisions: (integration, permission) mapped to the target rules
that can offer it, its window as a closure, its rank (the order :meth:`policy.flows.CompiledPolicy.choose_flow`
prefers flows in) and what choosing it demands.

:class:`FlowIndex` answers which flows of a kind an identity may use at some time of day (requestors, space,
active; the windows are looked at per call). Flows are indexed by the requestor keys they need
(``group``/``user``/``oncall`` values, :func:`policy.conditions.index_keys`), so finding the flows of a user
looks only at the flows that can concern them. A flow whose requestors the key alone decides
(:func:`policy.conditions.index_decides`) and whose space admits everybody needs no evaluation at all; the
answer for such flows is remembered per set of keys, so a user never seen before who has the groups of someone
seen before costs a few lookups. The whole answer is remembered per identity, keyed by every attribute the
rules read (:attr:`policy.identity.Identity.match_key`). The answers, :class:`Usable`, are shared by every
identity with the same flows, and each remembers, per (integration, permission) asked, the flows that offer it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter, is_
from typing import NamedTuple, TypeVar

from policy.catalog import TargetRule
from policy.conditions import IndexKey, Matcher, compile_conditions, identity_keys, index_decides, index_keys
from policy.config import Flow
from policy.identity import Identity, MatchKey
from policy.resources import Permission, Resource

IDENTITY_CACHE_SIZE = 16_384
"""How many distinct identities' usable flows are remembered (per kind of flow); as many distinct sets of
index keys (see :class:`_KindIndex`)."""

PAIRS_REMEMBERED = 64
"""For how many (integration, permission) pairs a :class:`Usable` remembers the flows that offer it."""

PairKey = tuple[str, str]  # (integration, permission)
_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class CompiledFlow:
    """One flow compiled for decisions (built by :class:`policy.flows.CompiledPolicy`)."""

    flow: Flow
    rules: tuple[TargetRule, ...]
    approvers_needed: int  # 0 = automatic; used to prefer the lightest flow
    offers: dict[PairKey, Offer] = field(default_factory=dict, compare=False, repr=False)
    """(integration, permission) -> this flow and its target rules that can offer the pair (filled by the
    compiler once the flow exists)."""
    rank: tuple[int, float, str] = field(default=(0, 0.0, ""), compare=False, repr=False)
    inside: Callable[[datetime], bool] | None = field(
        default=None, compare=False, repr=False
    )  # None = always
    for_themselves: bool = field(default=True, compare=False, repr=False)  # "themselves" in request_for
    demands: tuple[timedelta | None, bool, bool, bool, bool] = field(
        default=(None, False, False, False, False), compare=False, repr=False
    )  # what a choice of this flow demands: FlowChoice's fields after the permission

    @property
    def name(self) -> str:
        return self.flow.name

    def allows(self, resource: Resource, permission: Permission) -> bool:
        if not self.offers:
            return any(rule.allows(resource, permission) for rule in self.rules)
        if permission.integration != resource.integration:
            return False
        offer = self.offers.get((resource.integration, permission.name))
        return offer is not None and any(rule.offers(resource, permission) for rule in offer.rules)


class Offer(NamedTuple):
    """A flow, and its rules that can offer one (integration, permission) pair."""

    compiled: CompiledFlow
    rules: tuple[TargetRule, ...]


class Usable:
    """The flows of one kind an identity may use at any time of day (before the windows are looked at).

    Shared by every identity with the same flows; immutable but for what it remembers (``offering``).
    """

    __slots__ = ("by_name", "by_rank", "windowed", "offering")

    def __init__(self, flows: Sequence[CompiledFlow]) -> None:
        if len(flows) > 1:
            by_name = tuple(sorted(flows, key=_NAME))
            by_rank = tuple(sorted(by_name, key=_RANK))
        else:
            by_name = by_rank = tuple(flows)
        self.by_name: tuple[CompiledFlow, ...] = by_name
        self.by_rank: tuple[CompiledFlow, ...] = by_name if all(map(is_, by_rank, by_name)) else by_rank
        self.windowed = any([compiled.inside is not None for compiled in by_name])  # any time window?
        # (integration, permission) -> the offers of the flows of by_rank for it; filled as asked
        self.offering: dict[PairKey, tuple[Offer, ...]] = {}

    def offering_of(self, pair: PairKey) -> tuple[Offer, ...]:
        """The flows that offer ``pair``, preferred first; remembered for :data:`PAIRS_REMEMBERED` pairs."""
        found = self.offering.get(pair)
        if found is None:
            found = tuple([offer for compiled in self.by_rank if (offer := compiled.offers.get(pair))])
            if self.by_rank and len(self.offering) < PAIRS_REMEMBERED:  # (NOTHING, shared, stays empty)
                self.offering[pair] = found
        return found


_NAME = attrgetter("flow.name")
_RANK = attrgetter("rank")
NOTHING = Usable(())
"""No flows (an inactive identity, a kind without flows, keys that give nothing); remembers nothing."""


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> None:
    """``cache[key] = value``, forgetting the oldest entry when the cache holds :data:`IDENTITY_CACHE_SIZE`."""
    if len(cache) >= IDENTITY_CACHE_SIZE:
        try:
            del cache[next(iter(cache))]
        except (KeyError, RuntimeError, StopIteration):  # another thread got there first
            pass
    cache[key] = value


class _KindIndex:
    """The flows of one kind, indexed by the requestor keys they need (:func:`policy.conditions.index_keys`).

    Each key is numbered (``ids``); by key number:

    - ``decided``: flows that an identity with the key may use, nothing else to check (the requestors are
      decided by the index, :func:`policy.conditions.index_decides`, and the flow's space admits everybody);
    - ``checked``: flows an identity needs the key for, whose requestors and space are then evaluated.

    ``unindexed``: flows whose requestors and space are evaluated for every identity.

    The decided flows of an identity depend only on which keys of the index it has, so they are remembered
    per set of key numbers (``by_keys``): a never-seen user who has the groups of someone seen before costs
    a few lookups, and the numbers keep the remembered sets small.
    """

    __slots__ = ("ids", "decided", "checked", "unindexed", "by_keys")

    def __init__(self) -> None:
        self.ids: dict[IndexKey, int] = {}
        self.decided: dict[int, list[CompiledFlow]] = {}
        self.checked: dict[int, list[CompiledFlow]] = {}
        self.unindexed: list[CompiledFlow] = []
        self.by_keys: dict[frozenset[int], Usable] = {}

    def add(self, compiled: CompiledFlow, keys: frozenset[IndexKey] | None, decided: bool) -> None:
        if keys is None:
            self.unindexed.append(compiled)
            return
        by_id = self.decided if decided else self.checked
        for key in keys:
            number = self.ids.setdefault(key, len(self.ids))
            by_id.setdefault(number, []).append(compiled)

    def decided_for(self, identity: Identity) -> tuple[frozenset[int], Usable]:
        """The numbers of the keys ``identity`` has, and the decided flows those keys give."""
        found = []
        ids = self.ids
        for key in identity_keys(identity):
            number = ids.get(key)
            if number is not None:
                found.append(number)
        numbers = frozenset(found)
        usable = self.by_keys.get(numbers)
        if usable is None:
            flows: dict[str, CompiledFlow] = {}
            for number in numbers:
                for compiled in self.decided.get(number, ()):
                    flows[compiled.name] = compiled
            usable = Usable(list(flows.values())) if flows else NOTHING
            _remember(self.by_keys, numbers, usable)
        return numbers, usable


class FlowIndex:
    """Which flows of each kind an identity may use at some time of day (requestors, space, active)."""

    def __init__(self, space_members: Mapping[str, Matcher | None]) -> None:
        """``space_members``: each space's compiled ``members`` condition (None = everybody)."""
        self._space_members = dict(space_members)
        self._requestors: dict[str, Matcher] = {}
        self._kinds: dict[str, _KindIndex] = {}  # flow type -> its flows, indexed
        # kind -> Identity.match_key -> the flows of that kind such an identity may use (oldest first)
        self._by_identity: dict[str, dict[MatchKey, Usable]] = {}
        self.self_serve: dict[MatchKey, Usable] = {}  # the one for self-serve flows, read directly by decisions
        self._by_identity["self_serve"] = self.self_serve

    def add(self, compiled: CompiledFlow) -> None:
        flow = compiled.flow
        self._requestors[flow.name] = compile_conditions(flow.requestors)
        index = self._kinds.get(flow.type)
        if index is None:
            index = self._kinds[flow.type] = _KindIndex()
        everybody = flow.space is None or self._space_members[flow.space] is None
        index.add(compiled, index_keys(flow.requestors), everybody and index_decides(flow.requestors))

    def usable(self, identity: Identity, kind: str) -> Usable:
        """The flows of ``kind`` ``identity`` may use at some time of day; remembered per identity."""
        cache = self._by_identity.get(kind)
        if cache is None:
            cache = self._by_identity.setdefault(kind, {})
        key = identity.match_key
        usable = cache.get(key)
        if usable is None:
            usable = self._usable_for(identity, kind)
            _remember(cache, key, usable)
        return usable

    def _usable_for(self, identity: Identity, kind: str) -> Usable:
        index = self._kinds.get(kind)
        if index is None or identity.deactivated or identity.is_bot:
            return NOTHING
        numbers, usable = index.decided_for(identity)
        if not (index.checked or index.unindexed):
            return usable
        found: dict[str, CompiledFlow] = {}
        candidates = [index.checked.get(number, ()) for number in numbers]
        candidates.append(index.unindexed)
        for group in candidates:
            for compiled in group:
                flow = compiled.flow
                if flow.name not in found and self._member(flow, identity) and self._requestors[flow.name](identity):
                    found[flow.name] = compiled
        if not found:
            return usable
        return Usable([*usable.by_name, *found.values()])

    def _member(self, flow: Flow, identity: Identity) -> bool:
        if flow.space is None:
            return True
        members = self._space_members[flow.space]
        return members is None or members(identity)
