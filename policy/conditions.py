"""Attribute conditions (SPEC §3): does an identity satisfy a requestor, grantee or approver condition set?

An identity's values for an attribute:

- ``user``: its Slack id and email; ``group``: its groups; ``manager``: its manager; ``oncall``: the schedules
  it is on shift for; ``owner``: ``true`` when it owns one of the integrations of the request being approved
  (``owned_integrations``), else ``false``;
- any other attribute: the directory attribute of that name (exact name; absent = no value).

Several condition values mean "any of these values". Every comparison is case-insensitive (both sides are
folded with :func:`fold`). The negative ops are the exact complements of their positive counterparts:
``is_not`` holds when ``is`` does not (so also when the identity has no value), ``does_not_contain`` holds
when ``contains`` does not.

:func:`index_keys` and :func:`identity_keys` support a fast lookup of the flows a user may use: a condition
set can only hold for an identity that shares at least one key with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from policy.config import Condition, ConditionSet, Op
from policy.identity import Identity

INDEXED_ATTRIBUTES: frozenset[str] = frozenset({"user", "group", "oncall"})
"""The multi-valued built-in attributes :func:`index_keys` and :func:`identity_keys` use."""

IndexKey = tuple[str, str]


fold: Callable[[str], str] = str.casefold
"""The case-insensitive form of a value used by every comparison and every index key (``str.casefold``,
bound directly: it is called for every value a condition reads)."""


def attribute_values(
    attribute: str, identity: Identity, *, owned_integrations: frozenset[str] = frozenset()
) -> frozenset[str]:
    """The identity's values of ``attribute``, folded; empty when the identity has none."""
    raw: Iterable[str | None]
    match attribute:
        case "user":
            raw = identity.ids
        case "group":
            raw = identity.groups
        case "manager":
            raw = (identity.manager,)
        case "oncall":
            raw = identity.oncall
        case "owner":
            raw = ("true" if identity.owner_of & owned_integrations else "false",)
        case _:
            raw = (identity.attributes.get(attribute),)
    return frozenset(fold(v) for v in raw if v is not None)


def _equals(value: str, wanted: str) -> bool:
    return value == wanted


def _contains(value: str, wanted: str) -> bool:
    return wanted in value


def _starts_with(value: str, wanted: str) -> bool:
    return value.startswith(wanted)


def _ends_with(value: str, wanted: str) -> bool:
    return value.endswith(wanted)


# op -> (comparison of one identity value with one condition value, whether the op negates it)
_OPS: dict[Op, tuple[Callable[[str, str], bool], bool]] = {
    "is": (_equals, False),
    "is_not": (_equals, True),
    "contains": (_contains, False),
    "does_not_contain": (_contains, True),
    "starts_with": (_starts_with, False),
    "ends_with": (_ends_with, False),
}


def condition_holds(
    condition: Condition, identity: Identity, *, owned_integrations: frozenset[str] = frozenset()
) -> bool:
    """Whether one condition holds for ``identity``.

    ``owned_integrations`` are the integrations of the request being approved (for the ``owner`` attribute).
    """
    compare, negated = _OPS[condition.op]
    values = attribute_values(condition.attribute, identity, owned_integrations=owned_integrations)
    wanted = [fold(v) for v in condition.values]
    if compare is _equals:
        found = not values.isdisjoint(wanted)
    else:
        found = any(compare(value, w) for value in values for w in wanted)
    return found != negated


def matches(
    conditions: ConditionSet, identity: Identity, *, owned_integrations: frozenset[str] = frozenset()
) -> bool:
    """Whether the condition set holds: ``match: all`` = every condition, ``match: any`` = at least one."""
    results = (
        condition_holds(c, identity, owned_integrations=owned_integrations) for c in conditions.conditions
    )
    return all(results) if conditions.match == "all" else any(results)


Matcher = Callable[[Identity], bool]
"""A condition set compiled for requestor, grantee and space checks (no ``owned_integrations``)."""


def _compile_condition(condition: Condition) -> Matcher:
    compare, negated = _OPS[condition.op]
    attribute = condition.attribute
    wanted = tuple(dict.fromkeys(fold(v) for v in condition.values))
    if compare is _equals:
        wanted_set = frozenset(wanted)

        def holds_equal(identity: Identity) -> bool:
            return wanted_set.isdisjoint(attribute_values(attribute, identity)) is negated

        return holds_equal

    def holds(identity: Identity) -> bool:
        found = any(compare(value, w) for value in attribute_values(attribute, identity) for w in wanted)
        return found != negated

    return holds


def compile_conditions(conditions: ConditionSet) -> Matcher:
    """``matches`` (without ``owned_integrations``) as a closure: condition values are folded once, here."""
    parts = tuple(_compile_condition(c) for c in conditions.conditions)
    if len(parts) == 1:
        return parts[0]
    if conditions.match == "all":
        return lambda identity: all(part(identity) for part in parts)
    return lambda identity: any(part(identity) for part in parts)


def _keys(condition: Condition) -> frozenset[IndexKey] | None:
    """The keys of an ``is`` condition on an indexed attribute, else None."""
    if condition.op != "is" or condition.attribute not in INDEXED_ATTRIBUTES:
        return None
    return frozenset((condition.attribute, fold(v)) for v in condition.values)


def index_keys(conditions: ConditionSet) -> frozenset[IndexKey] | None:
    """Keys of which an identity must have at least one for the set to hold; None = cannot be indexed.

    ``match: all``: the keys of the indexable condition with the fewest values. ``match: any``: the union of
    the keys of every condition, provided each condition is indexable.
    """
    keyed = [_keys(c) for c in conditions.conditions]
    if conditions.match == "all":
        candidates = [k for k in keyed if k is not None]
        return min(candidates, key=len) if candidates else None
    union: set[IndexKey] = set()
    for keys in keyed:
        if keys is None:
            return None
        union |= keys
    return frozenset(union)


def index_decides(conditions: ConditionSet) -> bool:
    """Whether having one of the :func:`index_keys` is not only needed but enough for the set to hold.

    So when every condition is an ``is`` on an indexed attribute and the set is one condition or
    ``match: any``: such a set holds exactly for the identities that share a key with it, and a lookup by key
    needs no evaluation of the conditions.
    """
    items = conditions.conditions
    if not items or any(_keys(c) is None for c in items):
        return False
    return len(items) == 1 or conditions.match == "any"


def identity_keys(identity: Identity) -> frozenset[IndexKey]:
    """The index keys an identity has: its ``user``, ``group`` and ``oncall`` values (folded)."""
    keys = []
    for value in identity.ids:
        keys.append(("user", fold(value)))
    for value in identity.groups:
        keys.append(("group", fold(value)))
    for value in identity.oncall:
        keys.append(("oncall", fold(value)))
    return frozenset(keys)
