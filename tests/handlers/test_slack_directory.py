"""SlackDirectory: one paginated load of the workspace, answers from memory, events, the fresh clicker check."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient

from bot.lifecycle.policy_holder import PolicyHolder
from bot.slack.directory import DirectoryUnavailable, SlackDirectory
from policy.validation import load_config_text
from tests.bot.fixtures import CONFIG, START
from tests.support.fake_slack import FakeSlack

CONFIG_WITH_GROUPS = CONFIG.replace("directory:\n", "directory:\n  slack_usergroups: true\n", 1).replace(
    "values: [cto@example.com]", "values: [UBOSS]"
)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as running:
        running.add_user("UALICE", "alice@example.com", real_name="Alice A", tz="Europe/Paris")
        running.add_user("UDANA", "dana@example.com", deleted=True)
        running.add_user("UZED", "zed@example.com")
        running.add_user("UBOSS", "boss@example.com")
        running.add_user("UROBOT", "robot@example.com", is_bot=True)
        running.add_usergroup("S1", "dba", ["UZED"])
        running.add_usergroup("S2", "unrelated", ["UROBOT"])
        yield running


def directory(
    fake: FakeSlack, config: str = CONFIG_WITH_GROUPS, **options: float
) -> tuple[SlackDirectory, list[float]]:
    now = [0.0]
    client = WebClient(token="xoxb-test", base_url=fake.url)
    holder = PolicyHolder.from_config(load_config_text(config))
    slack = SlackDirectory(client, holder, monotonic=lambda: now[0], **options)  # type: ignore[arg-type]
    slack.load()
    return slack, now


def web_calls(fake: FakeSlack) -> list[str]:
    return [c.method for c in fake.calls]


def test_identity_merges_slack_profile_and_config_without_a_call(fake: FakeSlack) -> None:
    slack, _ = directory(fake)
    fake.clear()
    alice = slack.identity("UALICE", START)
    assert (alice.email, alice.timezone, alice.display_name) == ("alice@example.com", "Europe/Paris", "Alice A")
    assert "sre" in alice.groups and not alice.deactivated
    assert slack.identity("UDANA", START).deactivated
    assert slack.identity("UROBOT", START).is_bot
    assert "dba" in slack.identity("UZED", START).groups  # a Slack user-group handle
    assert slack.identity("alice@example.com", START).slack_id == "UALICE"
    assert slack.identity("ALICE@example.com", START).slack_id == "UALICE"
    assert web_calls(fake) == []  # every answer came from the copy


def test_user_groups_only_count_when_enabled(fake: FakeSlack) -> None:
    slack, _ = directory(fake, CONFIG)
    assert "dba" not in slack.identity("UZED", START).groups
    assert fake.calls_to("usergroups.list") == []


def test_candidates_cover_directory_condition_users_and_group_members(fake: FakeSlack) -> None:
    slack, _ = directory(fake)
    fake.clear()
    candidates = {c.key: c for c in slack.candidates(START)}
    assert {"UALICE", "UDANA", "UERIN", "UZED", "UBOSS"} <= candidates.keys()
    assert "UROBOT" not in candidates
    assert candidates["UERIN"].deactivated  # in accessbot.yml but not in Slack: never asked
    assert web_calls(fake) == []  # not one users.info per candidate


def test_an_unknown_id_is_read_once_and_the_miss_remembered(fake: FakeSlack) -> None:
    slack, clock = directory(fake, miss_ttl=60)
    fake.add_user("UNEW", "new@example.com")  # joined after the load; the team_join event was missed
    fake.clear()
    assert not slack.identity("UNEW", START).deactivated
    assert slack.identity("UNEW", START).email == "new@example.com"
    assert slack.identity("UNOBODY", START).deactivated
    assert slack.identity("UNOBODY", START).deactivated
    assert [c["user"] for c in fake.calls_to("users.info")] == ["UNEW", "UNOBODY"]
    clock[0] = 61.0
    slack.identity("UNOBODY", START)
    assert len(fake.calls_to("users.info")) == 3


def test_events_keep_the_copy_current_without_a_call(fake: FakeSlack) -> None:
    slack, _ = directory(fake)
    fake.clear()
    old = dict(fake.users["UALICE"])
    slack.user_changed(dict(fake.users["UALICE"], deleted=True, updated=1_700_000_100))
    assert slack.identity("UALICE", START).deactivated
    slack.user_changed(old)  # an older profile delivered late never undoes the newer one
    assert slack.identity("UALICE", START).deactivated

    fake.add_user("UJOIN", "join@example.com")
    slack.user_changed(fake.users["UJOIN"])  # team_join
    assert slack.identity("join@example.com", START).slack_id == "UJOIN"

    slack.usergroup_changed({**fake.usergroups["S2"], "id": "S3", "handle": "oncall", "users": ["UBOSS"]})
    assert "oncall" in slack.identity("UBOSS", START).groups  # subteam_created
    slack.usergroup_members_changed("S1", ["UBOSS"], ["UZED"])
    assert "dba" in slack.identity("UBOSS", START).groups and "dba" not in slack.identity("UZED", START).groups
    slack.usergroup_changed({**fake.usergroups["S1"], "handle": "dbas", "users": ["UBOSS"]})  # renamed
    assert "dbas" in slack.identity("UBOSS", START).groups and "dba" not in slack.identity("UBOSS", START).groups
    slack.usergroup_changed({"id": "S3", "handle": "oncall", "date_delete": 1_700_000_200})  # disabled
    assert "oncall" not in slack.identity("UBOSS", START).groups
    assert web_calls(fake) == []


def test_the_clicker_is_read_fresh_even_when_the_event_was_missed(fake: FakeSlack) -> None:
    slack, _ = directory(fake)
    fake.add_user("UZED", "zed@example.com", deleted=True)  # deactivated; no user_change reached the bot
    fake.clear()
    assert not slack.identity("UZED", START).deactivated  # the copy has not heard of it
    assert slack.fresh_identity("UZED", START).deactivated
    assert [c["user"] for c in fake.calls_to("users.info")] == ["UZED"]  # exactly one call
    assert slack.identity("UZED", START).deactivated  # and the copy learnt it

    fake.fail_next("users.info", error="internal_error", status=500, retry_after=None)
    with pytest.raises(DirectoryUnavailable, match="nothing was decided"):
        slack.fresh_identity("UALICE", START)


def test_the_periodic_refresh_reloads_everything(fake: FakeSlack) -> None:
    slack, clock = directory(fake, refresh_every=3600)
    fake.add_user("UALICE", "alice@example.com", deleted=True)
    slack.refresh_due()
    assert not slack.identity("UALICE", START).deactivated  # not due yet
    clock[0] = 3601.0
    slack.refresh_due()
    assert slack.identity("UALICE", START).deactivated


def test_ten_thousand_users_and_500_groups_load_in_one_paginated_pass() -> None:
    with FakeSlack() as fake:
        for n in range(10_000):
            fake.add_user(f"U{n:06d}", f"user{n}@example.com")
        for g in range(500):
            fake.add_usergroup(f"S{g:04d}", f"team-{g}", [f"U{(g * 20 + i):06d}" for i in range(20)])
        client = WebClient(token="xoxb-test", base_url=fake.url)
        holder = PolicyHolder.from_config(load_config_text(CONFIG_WITH_GROUPS))
        slack = SlackDirectory(client, holder)
        tracemalloc.start()
        started = time.monotonic()
        assert slack.load() == 10_001  # and the bot user
        seconds = time.monotonic() - started
        held, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        pages = fake.calls_to("users.list")
        assert len(pages) == 51 and all(p["limit"] == "200" for p in pages)  # one pass, 200 a page
        assert len(fake.calls_to("usergroups.list")) == 1
        assert "team-7" in slack.identity("U000140", START).groups
        assert slack.identity("user9999@example.com", START).slack_id == "U009999"
        print(f"10,000 users / 500 groups: loaded in {seconds:.1f}s, {held / 1e6:.1f} MB held")
        assert held < 50e6  # a coarse guard; bench/bench_ack.py prints the figure


def test_a_rate_limited_load_waits_out_retry_after_and_goes_on_from_the_same_page() -> None:
    """users.list allows ~20 calls a minute: a 50-page load meets 429s with a Retry-After longer than the client
    waits by itself. The load waits that long and asks for the refused page again, never the first one."""
    with FakeSlack() as fake:
        for n in range(450):
            fake.add_user(f"U{n:05d}", f"person{n}@example.com")
        fake.rate_limit("users.list", times=2, retry_after=30, after=1)  # the second page, refused twice
        waits: list[float] = []
        client = WebClient(token="xoxb-test", base_url=fake.url)
        slack = SlackDirectory(client, PolicyHolder.from_config(load_config_text(CONFIG)), sleep=waits.append)
        assert slack.load() == 451  # and the bot user
        assert waits == [30.0, 30.0]
        cursors = [c.args.get("cursor") for c in fake.calls if c.method == "users.list"]
        assert cursors[0] is None and cursors[1] == cursors[2] == cursors[3] != cursors[4]  # page 2 asked again
        assert len(cursors) == 5 and [c.failed for c in fake.calls if c.method == "users.list"].count(True) == 2


def test_a_rate_limit_longer_than_five_minutes_fails_the_load_and_keeps_the_copy(fake: FakeSlack) -> None:
    slack, clock = directory(fake, refresh_every=3600)
    fake.add_user("UALICE", "alice@example.com", deleted=True)
    fake.rate_limit("users.list", times=1, retry_after=900)
    clock[0] = 3601.0
    slack.refresh_due()  # logged, not raised; tried again at the next refresh
    assert not slack.identity("UALICE", START).deactivated  # the copy in memory stays
    slack.refresh_due()
    assert slack.identity("UALICE", START).deactivated


def test_a_stopping_bot_does_not_wait_out_a_rate_limit(fake: FakeSlack) -> None:
    """SIGTERM during a load waiting out a 60 s Retry-After: the load gives up at once, not in a minute."""
    import threading

    fake.rate_limit("users.list", times=1, retry_after=60)
    client = WebClient(token="xoxb-test", base_url=fake.url)
    slack = SlackDirectory(client, PolicyHolder.from_config(load_config_text(CONFIG)))
    outcome: list[BaseException] = []

    def load() -> None:
        try:
            slack.load()
        except BaseException as error:  # noqa: BLE001 — what the load ended with
            outcome.append(error)

    loading = threading.Thread(target=load)
    loading.start()
    fake.wait_for("users.list")  # refused: the load is waiting now
    slack.stop()
    loading.join(timeout=10)
    assert not loading.is_alive() and len(outcome) == 1 and isinstance(outcome[0], DirectoryUnavailable)
    assert not slack.loaded
