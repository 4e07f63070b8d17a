"""Generated descriptions of flows and condition sets: wording, determinism, one line."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.config import ConditionSet, Config, Flow
from policy.describe import describe_conditions, describe_flow

BASE: dict[str, Any] = {
    "timezone": "UTC",
    "integrations": [
        {
            "name": "prod-postgres",
            "type": "postgresql",
            "dsn_env": "PROD_PG_DSN",
            "permissions": {"read_only": {}, "read_write": {}},
        },
        {"name": "deploy", "type": "noop", "permissions": {"deployer": {}}},
    ],
    "bundles": [
        {"name": "billing-debug", "targets": [{"integration": "prod-postgres", "permissions": ["read_only"]}]}
    ],
    "access_scopes": [{"name": "eu-prod", "query": 'resource_tag.region = "eu"'}],
}
SPEC_FLOW: dict[str, Any] = {
    "name": "prod-db-read",
    "when": {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "from": "08:00",
        "to": "20:00",
        "timezone": "Europe/Berlin",
    },
    "requestors": {"conditions": [{"attribute": "group", "op": "is", "values": ["sre", "backend"]}]},
    "targets": [
        {
            "integration": "prod-postgres",
            "resource_type": "database",
            "permissions": ["read_only", "read_write"],
            "resources": {"any": True},
        },
        {"bundle": "billing-debug"},
        {"access_scope": "eu-prod"},
    ],
    "grant_for": "4h",
    "approval": {
        "type": "approvers",
        "groups": [
            {
                "match": "any",
                "conditions": [
                    {"attribute": "group", "op": "is", "values": ["dba"]},
                    {"attribute": "owner", "op": "is", "values": [True]},
                ],
            },
            {"conditions": [{"attribute": "oncall", "op": "is", "values": ["sre-primary"]}]},
        ],
        "escalation": {
            "every": "30m",
            "tiers": [{"conditions": [{"attribute": "user", "values": ["cto@x.io"]}]}],
        },
    },
    "settings": {"require_mfa": True, "require_justification": True},
}
MINIMAL: dict[str, Any] = {
    "name": "deployers",
    "requestors": {"conditions": [{"attribute": "user", "values": ["alice@example.com"]}]},
    "targets": [{"integration": "deploy", "permissions": ["deployer"]}],
    "settings": {"require_justification": False},
}


def flow_and_config(flow: dict[str, Any], **config: Any) -> tuple[Flow, Config]:
    parsed = Config.model_validate({**BASE, **config, "flows": [flow]})
    return parsed.flows[0], parsed


def describe(flow: dict[str, Any], **changes: Any) -> str:
    parsed, config = flow_and_config({**flow, **changes})
    return describe_flow(parsed, config)


def test_spec_example() -> None:
    assert describe(SPEC_FLOW) == (
        "prod-db-read: members of group sre or backend can request read_only, read_write on prod-postgres "
        "databases (any), bundle billing-debug, scope eu-prod for up to 4h, approved by any of: group dba or "
        "owner; on-call sre-primary (escalates to 1 tier every 30m), MFA, justification required, "
        "Mon–Fri 08:00–20:00 Europe/Berlin"
    )


def test_written_description_wins() -> None:
    assert describe(SPEC_FLOW, description="Read the prod databases\n  during office hours") == (
        "Read the prod databases during office hours"
    )


CASES: list[Any] = [
    # (id, flow changes, expected)
    (
        "minimal flow",
        {},
        "deployers: alice@example.com can request deployer on deploy resources (any) for up to 1h, "
        "approved automatically",
    ),
    (
        "indefinite grant",
        {"grant_for": "indefinite"},
        "deployers: alice@example.com can request deployer on deploy resources (any) indefinitely, "
        "approved automatically",
    ),
    (
        "requestors by other conditions",
        {
            "requestors": {
                "match": "any",
                "conditions": [
                    {"attribute": "department", "values": ["eng"]},
                    {"attribute": "group", "op": "is_not", "values": ["a", "b"]},
                ],
            }
        },
        "deployers: users where department is eng or group is none of a, b can request deployer "
        "on deploy resources "
        "(any) for up to 1h, approved automatically",
    ),
    (
        "on-call requestors",
        {"requestors": {"conditions": [{"attribute": "oncall", "values": ["sre-primary"]}]}},
        "deployers: whoever is on call for sre-primary can request deployer on deploy resources "
        "(any) for up to 1h, "
        "approved automatically",
    ),
    (
        "named resources and others",
        {
            "targets": [
                {
                    "integration": "prod-postgres",
                    "resource_type": "schema",
                    "permissions": ["read_only"],
                    "resources": {"names": ["billing", "ledger"]},
                },
                {"integration": "deploy", "permissions": ["deployer"], "resources": {"except": ["prod"]}},
                {
                    "integration": "deploy",
                    "resource_type": "service",
                    "permissions": ["deployer"],
                    "resources": {"tags": {"env": "prod"}},
                },
                {
                    "integration": "deploy",
                    "resource_type": "proxy",
                    "permissions": ["deployer"],
                    "resources": {"query": 'resource_name starts_with "a"'},
                },
                {"access_scope": "eu-prod", "permissions": ["read_only"]},
            ]
        },
        "deployers: alice@example.com can request read_only on prod-postgres schemas (billing, "
        "ledger), deployer on "
        "deploy resources (all except prod), deployer on deploy services (env=prod), deployer on "
        "deploy proxies "
        '(query resource_name starts_with "a"), scope eu-prod (read_only) for up to 1h, approved '
        "automatically",
    ),
    (
        "requests for others and extensions",
        {
            "request_for": ["themselves", "direct_reports", "others"],
            "extend": {"max_times": 1, "each": "15m"},
        },
        "deployers: alice@example.com can request deployer on deploy resources (any) for up to "
        "1h, also for their "
        "direct reports or others, extendable 1 time by 15m, approved automatically",
    ),
    (
        "only for others",
        {"request_for": ["others"]},
        "deployers: alice@example.com can request deployer on deploy resources (any) for up to "
        "1h, only for others, "
        "approved automatically",
    ),
    (
        "all of, distinct, reasons, self-approval",
        {
            "approval": {
                "type": "approvers",
                "combine": "all_of",
                "distinct_approvers": True,
                "groups": [
                    {
                        "conditions": [
                            {"attribute": "manager", "values": ["carol@example.com"]},
                            {"attribute": "level", "op": "starts_with", "values": ["L5"]},
                        ]
                    },
                    {"conditions": [{"attribute": "user", "values": ["bob@example.com"]}]},
                ],
                "escalation": {
                    "tiers": [
                        {"conditions": [{"attribute": "group", "values": ["a"]}]},
                        {"conditions": [{"attribute": "group", "values": ["b"]}]},
                    ]
                },
            },
            "settings": {
                "require_justification": False,
                "require_approver_reason": True,
                "no_self_approval": False,
            },
        },
        "deployers: alice@example.com can request deployer on deploy resources (any) for up to "
        "1h, approved by all "
        "of: reports to carol@example.com and level starts with L5; bob@example.com (each by a "
        "different person) "
        "(escalates to 2 tiers every 30m), approver reason required, self-approval allowed",
    ),
    (
        "automatic flow",
        {"type": "automatic", "when": {"from": "22:00", "to": "06:00"}},
        "deployers: alice@example.com hold deployer on deploy resources (any) while they match, "
        "daily 22:00–06:00 UTC",
    ),
    (
        "space shown",
        {"space": "payments"},
        "deployers (space payments): alice@example.com can request deployer on deploy resources "
        "(any) for up to 1h, "
        "approved automatically",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_describe_flow(changes: dict[str, Any], expected: str) -> None:
    extra = {"spaces": [{"name": "payments"}]} if "space" in changes else {}
    flow, config = flow_and_config({**MINIMAL, **changes}, **extra)
    assert describe_flow(flow, config) == expected


def test_window_uses_the_config_default_timezone() -> None:
    flow, config = flow_and_config(
        {**MINIMAL, "when": {"days": ["sat", "sun"], "from": "10:00", "to": "12:00"}},
        timezone="America/New_York",
    )
    assert describe_flow(flow, config).endswith(
        "approved automatically, Sat, Sun 10:00–12:00 America/New_York"
    )


def cs(match: str, *conditions: tuple[str, str, list[Any]]) -> ConditionSet:
    return ConditionSet.model_validate(
        {"match": match, "conditions": [{"attribute": a, "op": op, "values": v} for a, op, v in conditions]}
    )


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        pytest.param(
            cs("all", ("group", "is", ["sre", "backend"]), ("department", "is", ["eng"])),
            "group is sre or backend and department is eng",
            id="brief example",
        ),
        pytest.param(
            cs("any", ("user", "is", ["a@x.io"]), ("oncall", "is", ["p"])),
            "user is a@x.io or oncall is p",
            id="match any",
        ),
        pytest.param(cs("all", ("group", "is", ["a", "b", "c"])), "group is a, b or c", id="three values"),
        pytest.param(cs("all", ("group", "is_not", ["sre"])), "group is not sre", id="is_not"),
        pytest.param(
            cs("all", ("group", "is_not", ["a", "b"])), "group is none of a, b", id="is_not several"
        ),
        pytest.param(cs("all", ("team", "contains", ["ops"])), "team contains ops", id="contains"),
        pytest.param(
            cs("all", ("team", "does_not_contain", ["ops"])),
            "team does not contain ops",
            id="does_not_contain",
        ),
        pytest.param(
            cs("all", ("team", "does_not_contain", ["a", "b"])),
            "team contains none of a, b",
            id="does_not_contain several",
        ),
        pytest.param(cs("all", ("user", "starts_with", ["adm"])), "user starts with adm", id="starts_with"),
        pytest.param(cs("all", ("user", "ends_with", ["@x.io"])), "user ends with @x.io", id="ends_with"),
        pytest.param(cs("all", ("owner", "is", [True])), "owner is true", id="boolean value"),
        pytest.param(
            cs("all", ("team", "is", ["Site Reliability", ""])),
            'team is "Site Reliability" or ""',
            id="values with spaces or empty are quoted",
        ),
    ],
)
def test_describe_conditions(conditions: ConditionSet, expected: str) -> None:
    assert describe_conditions(conditions) == expected


@given(st.lists(st.text(max_size=8), min_size=1, max_size=3), st.sampled_from(("all", "any")))
def test_descriptions_are_one_line_and_deterministic(values: list[str], match: str) -> None:
    conditions = cs(match, ("group", "is", values), ("team", "contains", values))
    flow, config = flow_and_config({**MINIMAL, "requestors": conditions.model_dump()})
    text = describe_flow(flow, config)
    assert "\n" not in text and "\r" not in text
    assert text == describe_flow(flow, config)
    assert "\n" not in describe_conditions(conditions) and "\r" not in describe_conditions(conditions)
