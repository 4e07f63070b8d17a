"""Identities from the directory plus Slack: lookups, groups, manager, attributes, on-call, reports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from policy.config import Directory
from policy.directory import DirectoryIndex, build_identity
from policy.identity import Identity

NOW = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)

DIRECTORY_DATA: dict[str, Any] = {
    "slack_usergroups": True,
    "users": [
        {
            "email": "Alice@Example.com",
            "slack_id": "U0ALICE",
            "groups": ["sre"],
            "manager": "carol@example.com",
            "attributes": {"department": "eng"},
        },
        {"email": "bob@example.com", "groups": ["backend"], "manager": "CAROL@example.com"},
        {"email": "carol@example.com", "slack_id": "U0CAROL", "groups": ["leads"]},
        {"email": "dave@example.com", "manager": "U0CAROL"},
        {"email": "erin@example.com", "manager": "alice@example.com"},
    ],
    "oncall": [
        {
            "schedule": "sre-primary",
            "rotation": {
                "every": "7d",
                "starts": "2026-01-05T09:00",
                "members": ["U0ALICE", "bob@example.com"],
            },
        },
        {
            "schedule": "db",
            "rotation": {"every": "1d", "starts": "2026-01-05T00:00", "members": ["alice@example.com"]},
        },
    ],
}
DIRECTORY = Directory.model_validate(DIRECTORY_DATA)
INDEX = DirectoryIndex(DIRECTORY)


@pytest.mark.parametrize(
    ("key", "expected_email"),
    [
        pytest.param("alice@example.com", "Alice@Example.com", id="email, other case"),
        pytest.param("u0alice", "Alice@Example.com", id="slack id, other case"),
        pytest.param(" bob@example.com ", "bob@example.com", id="surrounding spaces"),
        pytest.param("U0BOB", None, id="unknown slack id"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="none"),
    ],
)
def test_user_lookup(key: str | None, expected_email: str | None) -> None:
    user = INDEX.user(key)
    assert (user.email if user else None) == expected_email


@pytest.mark.parametrize(
    ("manager", "expected"),
    [
        pytest.param(
            "carol@example.com",
            {"alice@example.com", "bob@example.com", "dave@example.com"},
            id="by email, reports named by email in any case or by slack id",
        ),
        pytest.param(
            "U0CAROL", {"alice@example.com", "bob@example.com", "dave@example.com"}, id="by slack id"
        ),
        pytest.param("ALICE@example.com", {"erin@example.com"}, id="one report"),
        pytest.param("erin@example.com", set(), id="no reports"),
        pytest.param("stranger@example.com", set(), id="not in the directory"),
    ],
)
def test_direct_reports(manager: str, expected: set[str]) -> None:
    assert INDEX.direct_reports(manager) == expected


def test_identity_of_a_directory_user_found_by_slack_id() -> None:
    identity = INDEX.build_identity(
        slack_id="U0ALICE",
        email=None,
        now=NOW,
        slack_groups=["incident-commanders"],
        owner_of=["prod-postgres"],
        timezone="Europe/Berlin",
        display_name="Alice",
    )
    assert identity == Identity(
        slack_id="U0ALICE",
        email="Alice@Example.com",
        groups=frozenset({"sre", "incident-commanders"}),
        manager="carol@example.com",
        oncall=frozenset({"sre-primary", "db"}),
        attributes={"department": "eng"},
        owner_of=frozenset({"prod-postgres"}),
        timezone="Europe/Berlin",
        display_name="Alice",
    )


CASES: list[Any] = [
    # (id, directory, kwargs, expected fields)
    (
        "found by email in any case; slack id from Slack kept",
        DIRECTORY,
        {"slack_id": "U0BOB", "email": "BOB@example.com"},
        {
            "slack_id": "U0BOB",
            "email": "BOB@example.com",
            "groups": {"backend"},
            "manager": "CAROL@example.com",
        },
    ),
    (
        "slack user groups ignored when disabled",
        Directory.model_validate({**DIRECTORY_DATA, "slack_usergroups": False}),
        {"slack_id": "U0ALICE", "email": None, "slack_groups": ["oncall-team"]},
        {"groups": {"sre"}},
    ),
    (
        "unknown user: Slack groups only, no manager or attributes",
        DIRECTORY,
        {"slack_id": "U0NEW", "email": "new@example.com", "slack_groups": ["backend", ""]},
        {"groups": {"backend"}, "manager": None, "attributes": {}, "oncall": set()},
    ),
    (
        "on-call by the member's email although Slack gave only the id",
        DIRECTORY,
        {"slack_id": "U0ALICE", "email": None},
        {"oncall": {"sre-primary", "db"}},
    ),
    (
        "on-call by the slack id listed in the rotation",
        DIRECTORY,
        {"slack_id": None, "email": "alice@example.com"},
        {"slack_id": "U0ALICE", "oncall": {"sre-primary", "db"}},
    ),
    (
        "on-call follows the rotation at `now`",
        DIRECTORY,
        {"slack_id": "U0ALICE", "email": None, "now": datetime(2026, 1, 12, 9, 0, tzinfo=UTC)},
        {"oncall": {"db"}},
    ),
    (
        "deactivated and bot flags passed through",
        DIRECTORY,
        {"slack_id": "U0BOT", "email": None, "deactivated": True, "is_bot": True},
        {"deactivated": True, "is_bot": True, "email": None, "groups": set()},
    ),
    (
        "neither slack id nor email",
        Directory(),
        {"slack_id": None, "email": None},
        {"slack_id": None, "email": None, "groups": set(), "oncall": set()},
    ),
]


@pytest.mark.parametrize(("directory", "kwargs", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_build_identity(directory: Directory, kwargs: dict[str, Any], expected: dict[str, Any]) -> None:
    identity = build_identity(directory, **{"now": NOW, **kwargs})
    for name, value in expected.items():
        assert getattr(identity, name) == value, name
    assert identity == DirectoryIndex(directory).build_identity(**{"now": NOW, **kwargs})


def test_identity_attributes_are_a_copy() -> None:
    identity = INDEX.build_identity(slack_id="U0ALICE", email=None, now=NOW)
    assert identity.attributes is not DIRECTORY.users[0].attributes


def test_first_entry_wins_for_duplicate_emails() -> None:
    directory = Directory.model_validate(
        {
            "users": [
                {"email": "a@example.com", "groups": ["one"]},
                {"email": "A@example.com", "groups": ["two"]},
            ]
        }
    )
    assert DirectoryIndex(directory).build_identity(slack_id=None, email="a@example.com", now=NOW).groups == {
        "one"
    }
