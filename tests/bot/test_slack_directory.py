"""SlackDirectory with a config that names people by email only, as most accessbot.yml files do.

Approvers must be reached by their Slack id (a DM goes to a user id, never to an email): an email is resolved
from the directory's copy of the workspace (``users.list``); an email nobody in the workspace has is never asked.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from slack_sdk import WebClient

from bot.lifecycle.approvers import eligible_approvers
from bot.lifecycle.policy_holder import PolicyHolder
from bot.slack.directory import SlackDirectory
from policy.validation import load_config_text
from tests.bot.fixtures import CONFIG, START
from tests.support.fake_slack import FakeSlack

EMAIL_ONLY = "\n".join(
    line.replace(", slack_id: UDANA", "").replace(", slack_id: UERIN", "").replace(", slack_id: UCTO", "")
    for line in CONFIG.splitlines()
)


def test_emails_in_the_config_resolve_to_slack_ids() -> None:
    assert "slack_id: UDANA" not in EMAIL_ONLY and "cto@example.com" in EMAIL_ONLY
    with FakeSlack() as fake:
        fake.add_user("UDANA", "dana@example.com")
        fake.add_user("UCTO", "CTO@example.com")  # Slack may keep another case
        # erin@example.com has no Slack account
        slack = SlackDirectory(WebClient(token="xoxb-test", base_url=fake.url),
                               PolicyHolder.from_config(load_config_text(EMAIL_ONLY)))

        dana = slack.identity("dana@example.com", START)
        assert (dana.slack_id, dana.key, dana.deactivated) == ("UDANA", "UDANA", False)
        assert "dba" in dana.groups  # the config's groups still apply to the Slack account
        assert slack.identity("UDANA", START).groups == dana.groups

        erin = slack.identity("erin@example.com", START)
        assert erin.deactivated  # nobody to DM: never asked

        candidates = {c.key: c for c in slack.candidates(START)}
        assert "UDANA" in candidates and "dana@example.com" not in candidates
        assert "UCTO" in candidates  # named only in an escalation tier's `user` condition
        assert not candidates["UDANA"].deactivated and not candidates["UCTO"].deactivated

        assert [c.method for c in fake.calls] == ["users.list"]  # one load; every answer from the copy


# --- candidates are built once per state of what they are built from ----------------------------------------

ROTATION = """
  oncall:
    - schedule: dba-rota
      timezone: UTC
      rotation: {every: 1d, starts: "2026-11-23T09:00", members: [dana@example.com, erin@example.com]}
"""
WITH_ROTA = CONFIG.replace("\nintegrations:", ROTATION.rstrip("\n") + "\nintegrations:", 1)
ON_CALL_APPROVES = WITH_ROTA.replace(
    "        - conditions: [{attribute: group, op: is, values: [dba]}]\n      escalation",
    "        - conditions: [{attribute: oncall, op: is, values: [dba-rota]}]\n      escalation", 1)


def _slack(fake: FakeSlack, config: str = CONFIG) -> SlackDirectory:
    for user_id, email in [("UALICE", "alice@example.com"), ("UBOB", "bob@example.com"), ("UDANA", "dana@example.com"),
                           ("UERIN", "erin@example.com"), ("UCTO", "cto@example.com")]:
        fake.add_user(user_id, email)
    return SlackDirectory(WebClient(token="xoxb-test", base_url=fake.url),
                          PolicyHolder.from_config(load_config_text(config)))


def _approvers(slack: SlackDirectory, flow: str, now: datetime, requester: str = "UALICE") -> list[str]:
    policy = slack.holder.current
    return sorted(i.key for i, _ in eligible_approvers(slack, policy.flows[flow].flow, slack.identity(requester, now),
                                                       [], {"db"}, now, tiers=0))


def test_candidates_are_kept_until_slack_says_something_changed() -> None:
    with FakeSlack() as fake:
        slack = _slack(fake)
        first = slack.candidates(START)
        assert slack.candidates(START + timedelta(minutes=5)) is first  # nothing changed: not built again
        assert _approvers(slack, "read-any", START) == ["UDANA", "UERIN"]

        dana = fake.users["UDANA"]
        slack.user_changed({**dana, "updated": 1_900_000_000,
                            "profile": {**dana["profile"], "status_text": "on holiday"}})  # nothing identities use
        slack.fresh_identity("UERIN", START)  # a clicker read again, unchanged
        assert slack.candidates(START) is first

        slack.user_changed({"id": "UDANA", "deleted": True, "updated": 2_000_000_000,
                            "profile": {"email": "dana@example.com"}})  # deactivated (user_change)
        assert slack.candidates(START) is not first
        assert _approvers(slack, "read-any", START) == ["UERIN"]  # never asked once Slack says so


def test_candidates_follow_a_new_config() -> None:
    with FakeSlack() as fake:
        slack = _slack(fake)
        assert _approvers(slack, "read-any", START) == ["UDANA", "UERIN"]
        slack.holder.replace(load_config_text(CONFIG.replace("groups: [dba, security]", "groups: [security]")))
        assert _approvers(slack, "read-any", START) == ["UDANA"]


def test_candidates_follow_the_hand_over_of_a_rotation() -> None:
    with FakeSlack() as fake:
        slack = _slack(fake, ON_CALL_APPROVES)
        assert _approvers(slack, "read-any", START) == ["UDANA"]  # day 0: dana on call
        assert _approvers(slack, "read-any", START + timedelta(hours=23, minutes=59)) == ["UDANA"]
        assert _approvers(slack, "read-any", START + timedelta(days=1)) == ["UERIN"]  # the hand-over, at once
        assert _approvers(slack, "read-any", START + timedelta(days=2)) == ["UDANA"]


def test_the_requester_is_never_among_the_approvers_the_kept_answer_gives() -> None:
    with FakeSlack() as fake:
        slack = _slack(fake)
        assert _approvers(slack, "read-any", START, requester="UALICE") == ["UDANA", "UERIN"]
        assert _approvers(slack, "read-any", START, requester="UDANA") == ["UERIN"]  # same memo, dana taken out
        assert _approvers(slack, "read-any", START, requester="UALICE") == ["UDANA", "UERIN"]


def test_readers_arriving_before_the_first_load_share_one_pass() -> None:
    """Slack was down at start: the first lookups load the directory once, not once per waiting reader."""
    import threading

    with FakeSlack() as fake:
        slack = _slack(fake)
        readers = [threading.Thread(target=slack.identity, args=("UDANA", START)) for _ in range(8)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(10)
        assert [c.method for c in fake.calls].count("users.list") == 1


def _many(count: int) -> str:
    people = "".join(f"    - {{email: p{i}@example.com, slack_id: UP{i:04d}, groups: [sre]}}\n" for i in range(count))
    return CONFIG.replace("directory:\n  users:\n", "directory:\n  users:\n" + people, 1)


def test_a_background_build_of_the_candidates_pauses_between_pieces_until_someone_waits_for_it() -> None:
    """The warm-up builds everyone's identity on a background thread and steps aside between pieces for requests
    being answered; once a request needs the candidates itself and waits for that build, the build stops
    pausing (a pause would keep that request waiting)."""
    import threading
    import time

    from bot.lifecycle.directory import PAUSE_EVERY

    with FakeSlack() as fake:
        slack = _slack(fake, _many(5 * PAUSE_EVERY))
        slack.identity("UALICE", START)  # the copy of Slack is loaded
        pauses: list[int] = []
        waiter: list[threading.Thread] = []
        found: list[object] = []

        def pause() -> None:
            pauses.append(slack._candidates_build.callers)
            if len(pauses) == 2:  # a request arrives and needs the candidates now
                waiter.append(threading.Thread(target=lambda: found.append(slack.candidates(START))))
                waiter[0].start()
                deadline = time.monotonic() + 10
                while slack._candidates_build.callers < 2 and time.monotonic() < deadline:
                    time.sleep(0.001)

        built = slack.candidates(START, pause=pause)
        waiter[0].join(10)
        assert len(built) >= 5 * PAUSE_EVERY
        assert pauses == [1, 1]  # two pieces paused, none after the request began to wait
        assert found == [built]  # the waiting request took that build rather than making its own
