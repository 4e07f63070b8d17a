"""A submitted request checked and normalised before it is written (SPEC §5, §8): grantees, duration, text.

- grantees: the same person named twice counts once; at most :data:`MAX_GRANTEES`; none = the requester;
- duration: what the requester picked (``require_duration``) or, without it, the flow's ``grant_for``;
- justification: refused with a field error when it holds control or bidi-override characters, blank-line
  runs collapsed, length-limited (:mod:`policy.user_text`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from policy.durations import parse_requested_hours
from policy.errors import InvalidRequest
from policy.flows import FlowChoice
from policy.identity import Identity
from policy.user_text import clean_user_text

MAX_GRANTEES = 20
MAX_JUSTIFICATION = 1000
MAX_REASON = 124


def grantees_of(requester: Identity, grantees: Sequence[Identity]) -> list[Identity]:
    """The distinct grantees (the requester when none), refused beyond :data:`MAX_GRANTEES`."""
    distinct: list[Identity] = []
    for grantee in grantees:
        if not any(grantee.same_person(seen) for seen in distinct):
            distinct.append(grantee)
    if len(distinct) > MAX_GRANTEES:
        raise InvalidRequest(f"A request is for at most {MAX_GRANTEES} people (this one names {len(distinct)}).",
                             field="grantees")
    return distinct or [requester]


def duration_of(choice: FlowChoice, raw: str | float | None) -> timedelta | None:
    blank = raw is None or (isinstance(raw, str) and not raw.strip())
    if choice.require_duration or not blank:
        return parse_requested_hours(raw, choice.max_duration)
    return choice.max_duration


def justification_of(choice: FlowChoice, text: str | None) -> str:
    value = clean_user_text(text, field="justification", what="justification", limit=MAX_JUSTIFICATION)
    if choice.require_justification and not value:
        raise InvalidRequest("Say why you need this access.", field="justification")
    return value


def reason_of(text: str | None) -> str | None:
    return clean_user_text(text, field="reason", what="reason", limit=MAX_REASON) or None
