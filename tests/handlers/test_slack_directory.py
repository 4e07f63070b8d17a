"""SlackDirectory: users.info merged with the config directory, user groups, candidates, TTL cache."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient

from bot.lifecycle.policy_holder import PolicyHolder
from bot.slack.directory import SlackDirectory
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
    fake: FakeSlack, config: str = CONFIG_WITH_GROUPS, ttl: float = 60.0
) -> tuple[SlackDirectory, list[float]]:
    now = [0.0]
    client = WebClient(token="xoxb-test", base_url=fake.url)
    holder = PolicyHolder.from_config(load_config_text(config))
    return SlackDirectory(client, holder, ttl=ttl, monotonic=lambda: now[0]), now


def test_identity_merges_slack_profile_and_config(fake: FakeSlack) -> None:
    slack, _ = directory(fake)
    alice = slack.identity("UALICE", START)
    assert (alice.email, alice.timezone, alice.display_name) == (
        "alice@example.com",
        "Europe/Paris",
        "Alice A",
    )
    assert "sre" in alice.groups and not alice.deactivated
    assert slack.identity("UDANA", START).deactivated
    assert slack.identity("UROBOT", START).is_bot
    assert "dba" in slack.identity("UZED", START).groups  # a Slack user-group handle
    assert slack.identity("UNOBODY", START).deactivated  # unknown to Slack
    assert slack.identity("alice@example.com", START).slack_id == "UALICE"


def test_user_groups_only_count_when_enabled(fake: FakeSlack) -> None:
    slack, _ = directory(fake, CONFIG)
    assert "dba" not in slack.identity("UZED", START).groups
    assert fake.calls_to("usergroups.list") == []


def test_candidates_cover_directory_condition_users_and_group_members(fake: FakeSlack) -> None:
    slack, _ = directory(fake)
    keys = {c.key for c in slack.candidates(START)}
    assert {"UALICE", "UDANA", "UERIN", "UZED", "UBOSS"} <= keys
    assert "UROBOT" not in keys


def test_lookups_are_cached_for_the_ttl(fake: FakeSlack) -> None:
    slack, clock = directory(fake, ttl=60)
    slack.identity("UALICE", START)
    slack.identity("UALICE", START)
    assert len(fake.calls_to("users.info")) == 1
    fake.add_user("UALICE", "alice@example.com", deleted=True)
    clock[0] = 61.0
    assert slack.identity("UALICE", START).deactivated
    assert len(fake.calls_to("users.info")) == 2
