"""Schedules read from an incident tool (pure): which answer counts for approving and for access held."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from policy.config import Directory
from policy.oncall import (
    ProviderReading,
    ProviderShift,
    ProviderState,
    provider_on_call,
    schedules_for,
    schedules_on_shift,
)
from policy.validation import ConfigError, load_config_text

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
HAND_OVER = NOW + timedelta(minutes=2)
DANA_THEN_ERIN = ProviderReading(
    (ProviderShift("Dana@example.com", NOW - timedelta(hours=8), HAND_OVER),
     ProviderShift("erin@example.com", HAND_OVER, None)),
    read_at=NOW,
)
FLAT = ProviderReading((ProviderShift("frank@example.com"),), read_at=NOW)

CASES = [
    ("a fresh answer: who it has on call now (emails case-folded)",
     ProviderState(DANA_THEN_ERIN), NOW, {"approve": {"dana@example.com"}, "hold": {"dana@example.com"}}),
    ("the answer says who takes over within its window",
     ProviderState(DANA_THEN_ERIN), HAND_OVER, {"approve": {"erin@example.com"}, "hold": {"erin@example.com"}}),
    ("a flat answer (Opsgenie) has no times: on call from the reading on",
     ProviderState(FLAT), NOW + timedelta(minutes=1),
     {"approve": {"frank@example.com"}, "hold": {"frank@example.com"}}),
    ("the latest read failed: nobody approves; access held keeps the last answer (and the take-over)",
     ProviderState(DANA_THEN_ERIN, failing=True), HAND_OVER + timedelta(hours=1),
     {"approve": set(), "hold": {"dana@example.com", "erin@example.com"}}),
    ("an answer older than five minutes is not trusted to approve",
     ProviderState(FLAT), NOW + timedelta(minutes=6), {"approve": set(), "hold": {"frank@example.com"}}),
    ("no answer yet: nobody approves; access held is unknown",
     ProviderState(None, failing=True), NOW, {"approve": set(), "hold": None}),
]


@pytest.mark.parametrize(("state", "now", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_provider_on_call(state: ProviderState, now: datetime, expected: dict[str, set[str] | None]) -> None:
    for purpose in ("approve", "hold"):
        assert provider_on_call(state, now, purpose) == expected[purpose], purpose  # type: ignore[arg-type]


def test_provider_schedules_count_next_to_rotations() -> None:
    directory = Directory.model_validate({"oncall": [
        {"schedule": "sre", "rotation": {"every": "7d", "starts": "2026-11-01T00:00", "members": ["bob@example.com"]}},
        {"schedule": "dba", "pagerduty": {"schedule_id": "PDBA1", "token_env": "PD"}},
    ]})
    provider = {"dba": frozenset({"dana@example.com"})}
    assert schedules_on_shift(directory, "DANA@example.com", NOW, provider) == {"dba"}
    assert schedules_on_shift(directory, "bob@example.com", NOW, provider) == {"sre"}
    assert schedules_for(directory.oncall, ["dana@example.com"], NOW) == frozenset()  # no answer: nobody


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{schedule: x}", "give exactly one of rotation, pagerduty, opsgenie (written: none)"),
        ("{schedule: x, pagerduty: {schedule_id: P1, token_env: T}, opsgenie: {schedule: x, token_env: T}}",
         "written: pagerduty, opsgenie"),
        ("{schedule: x, pagerduty: {schedule_id: P1}}", "required key is missing"),
        ("{schedule: x, opsgenie: {schedule: x, token_env: T, token: abc}}", "unknown key 'token'"),
    ],
)
def test_a_schedule_has_exactly_one_source(entry: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(f"directory:\n  oncall:\n    - {entry}\n")
    assert any(message in p.message and p.path.startswith("directory.oncall[0]") for p in caught.value.problems), [
        str(p) for p in caught.value.problems]
