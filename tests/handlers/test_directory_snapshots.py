"""A start serves from the last full load's snapshot (in the database) and reads Slack again in the background.

Without it, a 10,000-person workspace is 50 ``users.list`` pages before the first answer: half a minute at
Slack's latency, on every start of every replica. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from slack_sdk import WebClient
from sqlalchemy import update

from bot.clock import FakeClock
from bot.lifecycle.policy_holder import PolicyHolder
from bot.slack.directory import SlackDirectory
from bot.slack.roster_snapshots import RosterSnapshots
from policy.validation import load_config_text
from store.db import Database
from store.models import DirectorySnapshot
from tests.bot.fixtures import CONFIG, START
from tests.handlers.test_slack_directory import CONFIG_WITH_GROUPS
from tests.support.fake_slack import FakeSlack

HOSTILE = "Ro\u202ebert'); DROP TABLE directory_snapshots; -- <@U1> *bold* \"quoted\" \u0000 " + "é" * 300


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as running:
        running.add_user("UALICE", "alice@example.com", real_name="Alice A", tz="Europe/Paris")
        running.add_user("UZED", "zed@example.com")
        running.add_user("UGONE", "gone@example.com", deleted=True)
        running.add_user("UODD", "odd@example.com", real_name=HOSTILE, tz="Asia/Kolkata")
        running.add_usergroup("S1", "dba", ["UZED"])
        yield running


def started(fake: FakeSlack, db: Database, clock: FakeClock, config: str = CONFIG_WITH_GROUPS) -> SlackDirectory:
    """A bot's directory as a start makes it: over the database's snapshots, then ``start()``."""
    client = WebClient(token="xoxb-test", base_url=fake.url)
    holder = PolicyHolder.from_config(load_config_text(config))
    directory = SlackDirectory(client, holder, snapshots=RosterSnapshots(db, clock.now))
    directory.start()
    return directory


def test_the_second_start_answers_from_the_snapshot_then_reads_slack_again(fake: FakeSlack, db: Database) -> None:
    clock = FakeClock(START)
    first = started(fake, db, clock)  # no snapshot yet: Slack is read before the start goes on
    assert len(fake.calls_to("users.list")) == 1 and first.identity("UZED", START).slack_id == "UZED"

    fake.add_user("UNEW", "new@example.com")  # Slack changes while the bot is down
    fake.add_user("UALICE", "alice@example.com", deleted=True)
    fake.clear()
    clock.advance(timedelta(minutes=10))
    second = started(fake, db, clock)
    assert fake.calls_to("users.list") == [] and fake.calls_to("usergroups.list") == []  # nothing waited for Slack
    alice = second.identity("UALICE", START)
    assert (alice.email, alice.display_name, alice.timezone, alice.deactivated) == (
        "alice@example.com", "Alice A", "Europe/Paris", False)  # as the snapshot has her
    assert "dba" in second.identity("UZED", START).groups  # the user groups came with it
    assert second.identity("UGONE", START).deactivated
    odd = second.identity("UODD", START)
    assert (odd.display_name, odd.timezone) == (HOSTILE, "Asia/Kolkata")  # whatever people type, kept as typed
    assert second.roster.user("UNEW") is None

    second.refresh_due()  # the refresher's next tick (in the background): Slack is read again, at once
    assert len(fake.calls_to("users.list")) == 1
    assert second.identity("UALICE", START).deactivated and second.roster.user("UNEW") is not None
    fake.clear()
    second.refresh_due()  # and then every refresh_every, as after any load
    assert fake.calls_to("users.list") == []

    third = started(fake, db, clock)  # that load was kept too
    assert fake.calls_to("users.list") == [] and third.identity("UALICE", START).deactivated


def test_an_old_snapshot_is_not_used(fake: FakeSlack, db: Database, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(START)
    started(fake, db, clock)
    fake.add_user("UNEW", "new@example.com")
    fake.clear()
    clock.advance(timedelta(days=3))  # the bot was down over a weekend
    with caplog.at_level(logging.INFO, logger="bot.slack.roster_snapshots"):
        directory = started(fake, db, clock)
    assert len(fake.calls_to("users.list")) == 1 and directory.roster.user("UNEW") is not None
    assert "snapshot is 3 days old (more than 24 h): not used" in caplog.text


def test_a_snapshot_without_user_groups_is_not_used_when_the_config_counts_them(fake: FakeSlack,
                                                                                db: Database) -> None:
    clock = FakeClock(START)
    started(fake, db, clock, CONFIG)  # user groups not read: the snapshot has none
    fake.clear()
    directory = started(fake, db, clock, CONFIG_WITH_GROUPS)
    assert len(fake.calls_to("usergroups.list")) == 1 and "dba" in directory.identity("UZED", START).groups


def test_an_unreadable_snapshot_means_reading_slack(fake: FakeSlack, db: Database,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(START)
    started(fake, db, clock)
    with db.begin() as session:  # another version's shape
        session.execute(update(DirectorySnapshot).values(users=[{"id": "UALICE"}]))
    fake.clear()
    directory = started(fake, db, clock)
    assert len(fake.calls_to("users.list")) == 1 and directory.identity("UALICE", START).email == "alice@example.com"
    assert "could not read the Slack directory's snapshot; reading Slack instead" in caplog.text


def test_a_reload_that_reads_the_same_workspace_keeps_the_identities_built(fake: FakeSlack, db: Database) -> None:
    clock = FakeClock(START)
    directory = started(fake, db, clock)
    generation = directory.roster.generation
    directory.load()  # the same users and groups
    assert directory.roster.generation == generation
    fake.add_user("UNEW", "new@example.com")
    directory.load()
    assert directory.roster.generation > generation and directory.roster.user("UNEW") is not None
