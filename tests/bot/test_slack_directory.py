"""SlackDirectory with a config that names people by email only, as most accessbot.yml files do.

Approvers must be reached by their Slack id (a DM goes to a user id, never to an email): an email is resolved
from the directory's copy of the workspace (``users.list``); an email nobody in the workspace has is never asked.
"""

from __future__ import annotations

from slack_sdk import WebClient

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
