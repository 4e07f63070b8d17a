"""The PagerDuty and Opsgenie clients and their cache, against a real loopback HTTP fake of each API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.clock import FakeClock
from bot.lifecycle.oncall import PROVIDER_ERRORS, Endpoints, OncallReadings, OncallUnknown, provider_oncall
from bot.lifecycle.policy_holder import PolicyHolder
from policy.validation import load_config_text
from tests.bot.fixtures import START
from tests.support.fake_oncall import OG_KEY, PD_TOKEN, FakeOncall, PagerDutyShift

CONFIG = """
directory:
  oncall:
    - schedule: payments-oncall
      pagerduty: {schedule_id: PABC123, token_env: PAGERDUTY_TOKEN}
    - schedule: infra-oncall
      opsgenie: {schedule: infra team, token_env: OPSGENIE_TOKEN}
"""
ENV = {"PAGERDUTY_TOKEN": PD_TOKEN, "OPSGENIE_TOKEN": OG_KEY}


class Ticker:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


@pytest.fixture
def fake() -> Iterator[FakeOncall]:
    server = FakeOncall()
    server.pagerduty["PABC123"] = [PagerDutyShift("Dana@example.com", START - timedelta(hours=1),
                                                  START + timedelta(hours=1))]
    server.opsgenie["infra team"] = ["erin@example.com"]
    server.start()
    yield server
    server.stop()


def readings(fake: FakeOncall, clock: FakeClock, ticker: Ticker | None = None, env: dict[str, str] = ENV,
             timeout: float = 2.0) -> OncallReadings:
    holder = PolicyHolder.from_config(load_config_text(CONFIG))
    return OncallReadings(holder, clock, env=env, endpoints=Endpoints(fake.url, fake.url, timeout),
                          monotonic=ticker or Ticker())


def errors(provider: str, schedule: str) -> float:
    return PROVIDER_ERRORS.labels(provider, schedule)._value.get()


def test_each_api_is_asked_the_way_it_documents_and_answers_who_is_on_call(fake: FakeOncall) -> None:
    answers = readings(fake, FakeClock(START)).on_call(START, "approve")
    assert answers == {"payments-oncall": frozenset({"dana@example.com"}),
                       "infra-oncall": frozenset({"erin@example.com"})}
    (pd,) = fake.calls("/oncalls")
    assert pd["headers"]["Authorization"] == f"Token token={PD_TOKEN}"
    assert pd["headers"]["Accept"] == "application/vnd.pagerduty+json;version=2"
    assert pd["query"]["schedule_ids[]"] == ["PABC123"] and pd["query"]["include[]"] == ["users"]
    (og,) = fake.calls("/v2/schedules/")
    assert og["path"] == "/v2/schedules/infra%20team/on-calls"  # the name, escaped in the path
    assert og["headers"]["Authorization"] == f"GenieKey {OG_KEY}"
    assert og["query"] == {"scheduleIdentifierType": ["name"], "flat": ["true"]}


def test_pagerduty_pages_are_all_read_and_a_hand_over_within_the_window_is_followed(fake: FakeOncall) -> None:
    fake.page_size_cap = 1
    fake.pagerduty["PABC123"] = [
        PagerDutyShift("dana@example.com", START - timedelta(hours=1), START + timedelta(minutes=3)),
        PagerDutyShift("bob@example.com", START + timedelta(minutes=3), None),  # within the 5-minute window
        PagerDutyShift("erin@example.com", START + timedelta(hours=1), None),  # beyond it: not asked for
    ]
    clock = FakeClock(START)
    cache = readings(fake, clock)
    assert cache.on_call(START, "approve")["payments-oncall"] == {"dana@example.com"}
    assert len(fake.calls("/oncalls")) == 2  # two pages of one entry each
    state = cache.refresh(cache.schedules()[0], older_than=60)  # the answer is fresh: not asked again
    assert state.last_good is not None and state.last_good.on_call(START + timedelta(minutes=3)) == {
        "bob@example.com"}


def test_a_decision_reuses_an_answer_a_few_seconds_old_and_rereads_an_older_one(fake: FakeOncall) -> None:
    clock, ticker = FakeClock(START), Ticker()
    cache = readings(fake, clock, ticker)
    cache.on_call(START, "approve")
    ticker.value += 4
    cache.on_call(START, "approve")
    assert len(fake.calls("/oncalls")) == 1
    fake.pagerduty["PABC123"] = [PagerDutyShift("erin@example.com", START - timedelta(minutes=1), None)]
    ticker.value += 2
    assert cache.on_call(START, "approve")["payments-oncall"] == {"erin@example.com"}
    assert len(fake.calls("/oncalls")) == 2
    clock.advance(minutes=10)  # the business clock moved (tests, a suspended host): re-read as well
    cache.on_call(clock.now(), "approve")
    assert len(fake.calls("/oncalls")) == 3


def test_the_background_refresh_rereads_each_schedule_once_a_minute(fake: FakeOncall) -> None:
    clock, ticker = FakeClock(START), Ticker()
    cache = readings(fake, clock, ticker)
    assert cache.refresh_due() == 2
    ticker.value += 30
    clock.advance(seconds=30)
    assert cache.refresh_due() == 0
    ticker.value += 31
    clock.advance(seconds=31)
    assert cache.refresh_due() == 2
    assert len(fake.calls("/oncalls")) == 2 and len(fake.calls("/v2/")) == 2


def test_an_outage_is_counted_and_nobody_on_that_schedule_approves_but_access_held_keeps_the_last_answer(
    fake: FakeOncall,
) -> None:
    clock, ticker = FakeClock(START), Ticker()
    cache = readings(fake, clock, ticker)
    assert cache.on_call(START, "hold")["payments-oncall"] == {"dana@example.com"}
    before = (errors("pagerduty", "payments-oncall"), errors("opsgenie", "infra-oncall"))
    fake.down = True
    ticker.value += 10
    assert cache.on_call(START, "approve") == {"payments-oncall": frozenset(), "infra-oncall": frozenset()}
    assert (errors("pagerduty", "payments-oncall"), errors("opsgenie", "infra-oncall")) == (
        before[0] + 1, before[1] + 1)
    later = clock.advance(hours=2)  # dana's shift has ended by the last answer; her held access is not cut
    assert cache.on_call(later, "hold") == {"payments-oncall": frozenset({"dana@example.com"}),
                                            "infra-oncall": frozenset({"erin@example.com"})}
    fake.down = False
    ticker.value += 10
    assert cache.on_call(later, "hold")["payments-oncall"] == frozenset()  # the tool answers: shift over


def test_before_any_answer_held_access_is_unknown_and_approving_is_nobody(fake: FakeOncall) -> None:
    fake.down = True
    cache = readings(fake, FakeClock(START))
    with pytest.raises(OncallUnknown, match="payments-oncall"):
        provider_oncall(cache, START, "hold")
    assert provider_oncall(cache, START, "approve") == {"payments-oncall": frozenset(),
                                                        "infra-oncall": frozenset()}


@pytest.mark.parametrize(
    ("description", "env", "breaks"),
    [
        ("a missing token", {"OPSGENIE_TOKEN": OG_KEY}, "pagerduty"),
        ("a wrong token (401)", {"PAGERDUTY_TOKEN": "nope", "OPSGENIE_TOKEN": OG_KEY}, "pagerduty"),
        ("a wrong key (422)", {"PAGERDUTY_TOKEN": PD_TOKEN, "OPSGENIE_TOKEN": "nope"}, "opsgenie"),
    ],
)
def test_credential_problems_are_counted_per_provider(
    fake: FakeOncall, description: str, env: dict[str, str], breaks: str
) -> None:
    schedule = {"pagerduty": "payments-oncall", "opsgenie": "infra-oncall"}[breaks]
    before = errors(breaks, schedule)
    answers = readings(fake, FakeClock(START), env=env).on_call(START, "approve")
    assert answers[schedule] == frozenset()
    assert errors(breaks, schedule) == before + 1


def test_an_unknown_opsgenie_schedule_and_an_answer_of_the_wrong_shape_are_errors(fake: FakeOncall) -> None:
    del fake.opsgenie["infra team"]
    before = errors("opsgenie", "infra-oncall")
    assert readings(fake, FakeClock(START)).on_call(START, "approve")["infra-oncall"] == frozenset()
    assert errors("opsgenie", "infra-oncall") == before + 1


def test_a_slow_provider_never_holds_a_click_longer_than_the_timeout(fake: FakeOncall) -> None:
    fake.delay = 1.5
    cache = readings(fake, FakeClock(START), timeout=0.3)
    started = time.monotonic()
    answers = cache.on_call(START, "approve")
    elapsed = time.monotonic() - started
    assert answers == {"payments-oncall": frozenset(), "infra-oncall": frozenset()}
    assert elapsed < 1.2, elapsed  # two schedules, 0.3 s each at most (plus overhead), not 2 × 1.5 s
