"""The Slack user group connector against the loopback fake Slack Web API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from slack_sdk import WebClient

from integrations.base import ConnectorContext, ConnectorError, GrantSpec, connector_factory
from integrations.slack_usergroup import SlackUsergroupConnector
from policy.resources import Permission, Resource
from tests.support.fake_slack import FakeSlack

INTEGRATION = "oncall-groups"
GROUP = Resource(integration=INTEGRATION, type="usergroup", name="incident-commanders")


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        for user_id in ("U1", "U2", "UALICE"):
            fake.add_user(user_id, f"{user_id.lower()}@example.com")
        fake.add_usergroup("S1", "incident-commanders", ["U1", "U2"])
        fake.add_usergroup("S2", "other-group", ["U1"])
        yield fake


@pytest.fixture
def connector(fake: FakeSlack) -> SlackUsergroupConnector:
    return SlackUsergroupConnector(INTEGRATION, WebClient(token="xoxb-test", base_url=fake.url), [GROUP])


def _spec(user: str = "UALICE", resource: Resource = GROUP, grant_id: int = 7) -> GrantSpec:
    return GrantSpec(
        grant_id=grant_id,
        request_id=1,
        grantee_slack_id=user,
        grantee_email=None,
        integration=INTEGRATION,
        resource=resource,
        permission=Permission(integration=INTEGRATION, name="member"),
        expires_at=None,
    )


def test_grant_adds_the_grantee_and_keeps_the_other_members(
    fake: FakeSlack, connector: SlackUsergroupConnector
) -> None:
    result = connector.grant(_spec())

    assert result.external_ref == "S1"
    assert fake.usergroups["S1"]["users"] == ["U1", "U2", "UALICE"]
    assert fake.usergroups["S2"]["users"] == ["U1"]
    assert "@incident-commanders" in result.note


def test_revoke_removes_only_the_grantee(fake: FakeSlack, connector: SlackUsergroupConnector) -> None:
    spec = replace(_spec(), external_ref=connector.grant(_spec()).external_ref)
    connector.revoke(spec)
    assert fake.usergroups["S1"]["users"] == ["U1", "U2"]


def test_grant_and_revoke_are_idempotent(fake: FakeSlack, connector: SlackUsergroupConnector) -> None:
    connector.grant(_spec())
    connector.grant(_spec())
    assert fake.usergroups["S1"]["users"] == ["U1", "U2", "UALICE"]
    assert len(fake.calls_to("usergroups.users.update")) == 1

    connector.revoke(_spec())
    connector.revoke(_spec())
    assert fake.usergroups["S1"]["users"] == ["U1", "U2"]
    assert len(fake.calls_to("usergroups.users.update")) == 2
    assert len(fake.calls_to("usergroups.list")) == 1, "the handle's id is looked up once and cached"


def test_revoking_the_last_member_empties_the_group(
    fake: FakeSlack, connector: SlackUsergroupConnector
) -> None:
    fake.add_usergroup("S3", "solo", [])
    solo = Resource(integration=INTEGRATION, type="usergroup", name="@solo")
    connector.grant(_spec(resource=solo))
    assert fake.usergroups["S3"]["users"] == ["UALICE"]

    connector.revoke(_spec(resource=solo))
    assert fake.usergroups["S3"]["users"] == []


def test_rate_limit_is_a_retryable_error_and_the_retry_succeeds(
    fake: FakeSlack, connector: SlackUsergroupConnector
) -> None:
    fake.fail_next("usergroups.users.update", error="ratelimited", status=429, retry_after=1)
    with pytest.raises(ConnectorError) as limited:
        connector.grant(_spec())
    assert limited.value.retryable and "429" in str(limited.value)
    assert fake.usergroups["S1"]["users"] == ["U1", "U2"]

    connector.grant(_spec())
    assert fake.usergroups["S1"]["users"] == ["U1", "U2", "UALICE"]


def test_configuration_errors_are_not_retryable(fake: FakeSlack, connector: SlackUsergroupConnector) -> None:
    with pytest.raises(ConnectorError, match="no Slack user group with handle @nope") as missing:
        connector.grant(_spec(resource=Resource(integration=INTEGRATION, type="usergroup", name="nope")))
    assert not missing.value.retryable

    with pytest.raises(ConnectorError, match="invalid_users") as unknown_user:
        connector.grant(_spec(user="U404"))
    assert not unknown_user.value.retryable
    assert fake.usergroups["S1"]["users"] == ["U1", "U2"]


def test_a_recreated_group_is_found_again_by_its_handle(
    fake: FakeSlack, connector: SlackUsergroupConnector
) -> None:
    connector.grant(_spec())
    del fake.usergroups["S1"]
    fake.add_usergroup("S9", "incident-commanders", ["U1"])

    result = connector.grant(replace(_spec(), external_ref="S1"))

    assert result.external_ref == "S9"
    assert fake.usergroups["S9"]["users"] == ["U1", "UALICE"]


def test_factory_uses_the_context_slack_client(fake: FakeSlack) -> None:
    @dataclass
    class Config:
        name: str = INTEGRATION

        def catalog_resources(self) -> list[Resource]:
            return [GROUP]

    client = WebClient(token="xoxb-test", base_url=fake.url)
    connector = connector_factory("slack_usergroup")(Config(), ConnectorContext(env={}, slack_client=client))
    assert connector.catalog() == [GROUP]
    connector.grant(_spec(user="U2"))  # already a member: nothing to write
    assert fake.calls_to("usergroups.users.update") == []

    with pytest.raises(ConnectorError, match="no Slack client"):
        connector_factory("slack_usergroup")(Config(), ConnectorContext(env={}))
