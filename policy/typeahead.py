"""Type-ahead over the resources a user may request: the best ``limit`` matches of a text, fast.

Matches are the resources whose lower-cased name, path, type or integration (the catalog's *haystack*) contain
the text; those whose name starts with it come first, then by name and key. That order is the *rank*.

Each integration's resources are indexed once, in rank order: by the first three letters of their names (for
the matches that come first) and by every three-letter piece of their haystacks (for the others). A search walks
only the postings of the text's rarest piece, keeping what the user's rules offer, and stops at ``limit``. What
each rule offers is remembered per rule (a position list and a membership byte map per integration), and
a search merges the best of each rule the user's flows have. An integration's index is built on its first
search and can be handed to the policy of the next config load when the integration's resources did not change.
"""

from __future__ import annotations

import heapq
import threading
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from policy.catalog import Catalog, TargetRule
from policy.resources import Resource

GRAM = 3
SMALL_OFFER = 2048
"""An offer this small in an integration is scanned directly rather than through the postings."""

_EMPTY = array("I")


def rank_key(resource: Resource) -> tuple[str, str]:
    return resource.name, resource.key


def haystack(resource: Resource) -> str:
    """The lower-cased text type-ahead looks in: name, path, type and integration."""
    return f"{resource.name} {resource.path} {resource.type} {resource.integration}".lower()


class IntegrationIndex:
    """One integration's resources in rank order, with their three-letter postings."""

    def __init__(self, resources: Sequence[Resource]) -> None:
        self.source = tuple(resources)
        ranked = sorted(self.source, key=rank_key)
        self.ranked: list[Resource] = ranked
        self.position: dict[str, int] = {r.key: i for i, r in enumerate(ranked)}
        self.names = [r.name.lower() for r in ranked]
        self.haystacks = [haystack(r) for r in ranked]
        self._heads: dict[str, array[int]] | None = None
        self._grams: dict[str, array[int]] | None = None
        self._building = threading.Lock()

    def _build(self) -> None:
        """The postings, built once: a search that arrives while another builds them waits for that build
        (the first searches after a start come at once; building an integration's postings takes ~0.1 s of
        interpreter time, which each building again would multiply)."""
        with self._building:
            if self._grams is None:
                self._build_postings()

    def _build_postings(self) -> None:
        heads: dict[str, array[int]] = {}
        grams: dict[str, array[int]] = {}
        for position, (name, text) in enumerate(zip(self.names, self.haystacks, strict=True)):
            heads.setdefault(name[:GRAM], array("I")).append(position)
            for piece in {text[i : i + GRAM] for i in range(len(text) - GRAM + 1)}:
                posting = grams.get(piece)
                if posting is None:
                    posting = grams[piece] = array("I")
                posting.append(position)
        self._heads, self._grams = heads, grams

    def heads(self, needle: str) -> array[int]:
        if self._heads is None:
            self._build()
        assert self._heads is not None
        return self._heads.get(needle[:GRAM], _EMPTY)

    def rarest(self, needle: str) -> array[int]:
        """The positions holding the needle's least common three-letter piece (a superset of the matches)."""
        if self._grams is None:
            self._build()
        assert self._grams is not None
        grams = self._grams
        return min((grams.get(needle[i : i + GRAM], _EMPTY) for i in range(len(needle) - GRAM + 1)), key=len)


@dataclass(frozen=True, slots=True)
class _Offer:
    """What one rule offers in one integration: every resource, or these positions (rank order)."""

    index: IntegrationIndex
    positions: array[int] | None  # None = the whole integration
    members: bytearray = field(default_factory=bytearray, compare=False)  # 1 at each offered position

    def search(self, needle: str, limit: int, small: int) -> tuple[list[Resource], list[Resource]]:
        """(prefix matches, other matches), each in rank order and at most ``limit`` long.

        An offer of at most ``small`` resources is scanned rather than looked up.
        """
        index = self.index
        if self.positions is not None and (len(self.positions) <= small or len(needle) < GRAM):
            return _scan(index, self.positions, needle, limit)
        if self.positions is None and len(needle) < GRAM:
            return _scan(index, range(len(index.ranked)), needle, limit)
        members = None if self.positions is None else self.members  # members[position] is 1 when offered
        names, texts, ranked = index.names, index.haystacks, index.ranked
        first: list[Resource] = []
        for position in index.heads(needle):
            if (members is None or members[position]) and names[position].startswith(needle):
                first.append(ranked[position])
                if len(first) >= limit:
                    return first, []
        rest: list[Resource] = []
        wanted = limit - len(first)
        exact = len(needle) == GRAM  # a three-letter needle is in every haystack of its posting
        for position in index.rarest(needle):
            if (
                (members is None or members[position])
                and (exact or needle in texts[position])
                and not names[position].startswith(needle)
            ):
                rest.append(ranked[position])
                if len(rest) >= wanted:
                    break
        return first, rest


def _scan(
    index: IntegrationIndex, positions: Iterable[int], needle: str, limit: int
) -> tuple[list[Resource], list[Resource]]:
    names, texts, ranked = index.names, index.haystacks, index.ranked
    first: list[Resource] = []
    rest: list[Resource] = []
    for position in positions:
        if needle in texts[position]:
            if names[position].startswith(needle):
                first.append(ranked[position])
                if len(first) >= limit:
                    break
            elif len(rest) < limit:
                rest.append(ranked[position])
    return first, rest


class Typeahead:
    """The type-ahead of one compiled policy."""

    def __init__(self, catalog: Catalog, previous: Typeahead | None = None, *, small_offer: int = SMALL_OFFER) -> None:
        self._catalog = catalog
        self._small = small_offer
        self._indexes: dict[str, IntegrationIndex] = {}
        self._offers: dict[int, tuple[_Offer, ...]] = {}  # id(rule) -> its offers, one per integration
        self._building = threading.RLock()  # one build of an index or of a rule's offers at a time, each once
        if previous is not None:  # reuse the indexes of integrations whose resources did not change
            for name, index in previous._indexes.items():
                if index.source == tuple(catalog.by_integration.get(name, ())):
                    self._indexes[name] = index

    def index(self, integration: str) -> IntegrationIndex:
        index = self._indexes.get(integration)
        if index is None:
            with self._building:
                index = self._indexes.get(integration)
                if index is None:
                    resources = self._catalog.by_integration.get(integration, ())
                    index = self._indexes[integration] = IntegrationIndex(resources)
        return index

    def search(self, rules: Sequence[TargetRule], text: str, limit: int) -> list[Resource]:
        """The best ``limit`` resources the rules offer that match ``text`` (see the module's order)."""
        if limit <= 0 or not rules:
            return []
        needle = text.strip().lower()
        firsts: list[list[Resource]] = []
        rests: list[list[Resource]] = []
        for offer in self._offers_of(rules):
            first, rest = offer.search(needle, limit, self._small)
            firsts.append(first)
            rests.append(rest)
        found = _take(heapq.merge(*firsts, key=rank_key), limit)
        if len(found) < limit:
            found += _take(heapq.merge(*rests, key=rank_key), limit - len(found))
        return found

    def _offers_of(self, rules: Sequence[TargetRule]) -> list[_Offer]:
        """The offers of the rules; each rule's are built once (rules are shared by the flows that repeat them)."""
        offers: list[_Offer] = []
        for rule in dict.fromkeys(rules):
            found = self._offers.get(id(rule))
            if found is None:
                found = self._built_offers(rule)
            offers += found
        return offers

    def _built_offers(self, rule: TargetRule) -> tuple[_Offer, ...]:
        with self._building:
            found = self._offers.get(id(rule))
            if found is None:
                found = self._offers[id(rule)] = self._build_offers(rule)
            return found

    def _build_offers(self, rule: TargetRule) -> tuple[_Offer, ...]:
        offers = []
        for integration, resources in _by_integration(self._catalog.offered(rule)):
            index = self.index(integration)
            if len(resources) == len(index.ranked):
                offers.append(_Offer(index, None))
                continue
            positions = array("I", sorted(index.position[r.key] for r in resources))
            members = bytearray(len(index.ranked))
            for position in positions:
                members[position] = 1
            offers.append(_Offer(index, positions, members))
        return tuple(offers)


def _by_integration(resources: Sequence[Resource]) -> Iterator[tuple[str, list[Resource]]]:
    groups: dict[str, list[Resource]] = {}
    for resource in resources:
        groups.setdefault(resource.integration, []).append(resource)
    yield from groups.items()


def _take(items: Iterable[Resource], limit: int) -> list[Resource]:
    out: list[Resource] = []
    seen: set[str] = set()
    for resource in items:
        if resource.key not in seen:
            seen.add(resource.key)
            out.append(resource)
            if len(out) >= limit:
                break
    return out
