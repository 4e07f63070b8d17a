"""The catalog (SPEC §4): targets (any/except/names/tags/query), bundles and access scopes resolve to exactly
the expected (resource, permission) sets."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.catalog import Catalog
from policy.config import Config, IntegrationTarget
from policy.resources import Resource
from policy.validation import load_config_text

CATALOG_CONFIG = """\
integrations:
  - name: prod-postgres
    type: postgresql
    dsn_env: PROD_PG_DSN
    risk_level: high
    resources:
      - {type: database, name: billing, path: prod/eu, tags: {env: prod, region: eu}}
      - {type: database, name: ledger, path: prod/us, tags: {env: prod, region: us}}
      - {type: database, name: scratch, path: dev/eu, tags: {env: staging, region: eu}, risk_level: low}
      - {type: schema, name: reporting, path: prod/eu, tags: {env: prod, region: eu}}
    permissions:
      read_only: {roles: [ro], risk_level: low}
      read_write: {roles: [rw], risk_level: critical}
  - name: deploy
    type: webhook
    url: https://deploy.internal/jit
    resources:
      - {type: service, name: billing-api, tags: {env: prod, region: eu}}
      - {type: service, name: search-api, tags: {env: staging}}
    permissions: {deployer: {}, admin: {risk_level: high}}
  - name: oncall-groups
    type: slack_usergroup
    resources: [{type: usergroup, name: incident-commanders}]
    permissions: {member: {}}
bundles:
  - name: billing-debug
    targets:
      - integration: prod-postgres
        resource_type: database
        permissions: [read_only]
        resources: {names: [billing]}
      - {integration: deploy, permissions: [deployer], resources: {names: [billing-api]}}
access_scopes:
  - name: eu-prod
    query: 'resource_tag.region = "eu" and resource_tag.env = "prod"'
  - name: writes
    query: 'permission_risk >= high'
flows:
  - name: placeholder
    requestors: {conditions: [{attribute: group, values: [sre]}]}
    targets: [{integration: deploy, permissions: [deployer]}]
"""
CONFIG = load_config_text(CATALOG_CONFIG)
CATALOG = Catalog(CONFIG)

PG = "prod-postgres"
BILLING, LEDGER, SCRATCH, REPORTING = (
    f"{PG}/database/billing",
    f"{PG}/database/ledger",
    f"{PG}/database/scratch",
    f"{PG}/schema/reporting",
)
BILLING_API, SEARCH_API = "deploy/service/billing-api", "deploy/service/search-api"
COMMANDERS = "oncall-groups/usergroup/incident-commanders"


def pairs(keys: list[str], *permissions: str) -> set[tuple[str, str]]:
    return {(k, p) for k in keys for p in permissions}


TARGETS: list[Any] = [
    # (description, target as written in a flow, expected {(resource key, permission)})
    (
        "any resource of the integration",
        {"integration": PG, "permissions": ["read_only"], "resources": {"any": True}},
        pairs([BILLING, LEDGER, SCRATCH, REPORTING], "read_only"),
    ),
    (
        "resources default to any",
        {"integration": PG, "permissions": ["read_only", "read_write"]},
        pairs([BILLING, LEDGER, SCRATCH, REPORTING], "read_only", "read_write"),
    ),
    (
        "resource_type narrows",
        {"integration": PG, "resource_type": "database", "permissions": ["read_write"]},
        pairs([BILLING, LEDGER, SCRATCH], "read_write"),
    ),
    (
        "except names",
        {"integration": PG, "permissions": ["read_only"], "resources": {"except": ["ledger", "scratch"]}},
        pairs([BILLING, REPORTING], "read_only"),
    ),
    (
        "names",
        {"integration": PG, "permissions": ["read_only"], "resources": {"names": ["billing", "scratch"]}},
        pairs([BILLING, SCRATCH], "read_only"),
    ),
    (
        "names with a resource_type that only one has",
        {
            "integration": PG,
            "resource_type": "schema",
            "permissions": ["read_only"],
            "resources": {"names": ["billing", "reporting"]},
        },
        pairs([REPORTING], "read_only"),
    ),
    (
        "one tag",
        {"integration": PG, "permissions": ["read_only"], "resources": {"tags": {"env": "prod"}}},
        pairs([BILLING, LEDGER, REPORTING], "read_only"),
    ),
    (
        "every tag must match",
        {
            "integration": PG,
            "permissions": ["read_only"],
            "resources": {"tags": {"env": "prod", "region": "eu"}},
        },
        pairs([BILLING, REPORTING], "read_only"),
    ),
    (
        "a tag value nobody has",
        {"integration": PG, "permissions": ["read_only"], "resources": {"tags": {"env": "qa"}}},
        set(),
    ),
    (
        "a query over the resource",
        {
            "integration": PG,
            "permissions": ["read_only", "read_write"],
            "resources": {"query": 'resource_path starts_with "prod/" and resource_name != ledger'},
        },
        pairs([BILLING, REPORTING], "read_only", "read_write"),
    ),
    (
        "a query over the permission narrows the listed permissions",
        {
            "integration": PG,
            "permissions": ["read_only", "read_write"],
            "resources": {"query": "permission_risk = low"},
        },
        pairs([BILLING, LEDGER, SCRATCH, REPORTING], "read_only"),
    ),
    (
        "a query on resource risk (scratch is low)",
        {"integration": PG, "permissions": ["read_only"], "resources": {"query": "resource_risk < high"}},
        pairs([SCRATCH], "read_only"),
    ),
    (
        "a query never reaches another integration",
        {
            "integration": "deploy",
            "permissions": ["deployer"],
            "resources": {"query": 'resource_tag.env = "prod"'},
        },
        pairs([BILLING_API], "deployer"),
    ),
    (
        "a bundle expands into its targets",
        {"bundle": "billing-debug"},
        pairs([BILLING], "read_only") | pairs([BILLING_API], "deployer"),
    ),
    (
        "an access scope with permissions",
        {"access_scope": "eu-prod", "permissions": ["read_only"]},
        pairs([BILLING, REPORTING], "read_only"),
    ),
    (
        "an access scope without permissions offers every permission of what it matches",
        {"access_scope": "eu-prod"},
        pairs([BILLING, REPORTING], "read_only", "read_write") | pairs([BILLING_API], "deployer", "admin"),
    ),
    (
        "an access scope over permissions",
        {"access_scope": "writes"},
        pairs([BILLING, LEDGER, SCRATCH, REPORTING], "read_write")
        | pairs([BILLING_API, SEARCH_API], "admin"),
    ),
    (
        "an access scope whose permissions belong to another integration",
        {"access_scope": "eu-prod", "permissions": ["member"]},
        set(),
    ),
    (
        "a slack user group",
        {"integration": "oncall-groups", "permissions": ["member"]},
        pairs([COMMANDERS], "member"),
    ),
]


def resolve(target: dict[str, Any], catalog: Catalog = CATALOG) -> set[tuple[str, str]]:
    flow = {
        "name": "f",
        "requestors": {"conditions": [{"attribute": "group", "values": ["x"]}]},
        "targets": [target],
    }
    config = Config.model_validate({**CONFIG.model_dump(by_alias=True, exclude={"flows"}), "flows": [flow]})
    parsed = config.flows[0].targets[0]
    return {
        (e.resource.key, e.permission.name)
        for rule in catalog.rules_for(parsed)
        for e in catalog.entitlements(rule)
    }


@pytest.mark.parametrize(("target", "expected"), [pytest.param(*c[1:], id=c[0]) for c in TARGETS])
def test_a_target_resolves_to_exactly_these_entitlements(
    target: dict[str, Any], expected: set[tuple[str, str]]
) -> None:
    assert resolve(target) == expected


@pytest.mark.parametrize(("target", "expected"), [pytest.param(*c[1:], id=c[0]) for c in TARGETS])
def test_allows_agrees_with_the_resolved_set(target: dict[str, Any], expected: set[tuple[str, str]]) -> None:
    """``allows`` over the whole catalog (every resource × every permission) gives the same set."""
    flow = {
        "name": "f",
        "requestors": {"conditions": [{"attribute": "group", "values": ["x"]}]},
        "targets": [target],
    }
    config = Config.model_validate({**CONFIG.model_dump(by_alias=True, exclude={"flows"}), "flows": [flow]})
    rules = CATALOG.rules_for(config.flows[0].targets[0])
    allowed = {
        (resource.key, permission.name)
        for resource in CATALOG.resources.values()
        for integration in CATALOG.permissions.values()
        for permission in integration.values()
        if any(rule.allows(resource, permission) for rule in rules)
    }
    assert allowed == expected


def test_catalog_lookups() -> None:
    billing = CATALOG.resource(BILLING)
    assert billing == Resource(
        integration=PG,
        type="database",
        name="billing",
        path="prod/eu",
        source_id="database:billing",
        tags=(("env", "prod"), ("region", "eu")),
        risk="high",
    )
    assert CATALOG.resource(SCRATCH) is not None and CATALOG.resource(SCRATCH).risk == "low"  # type: ignore[union-attr]
    assert CATALOG.resource("prod-postgres/database/nope") is None
    read_write = CATALOG.permission(PG, "read_write")
    assert read_write is not None and (read_write.risk, read_write.roles) == ("critical", ("rw",))
    assert CATALOG.permission(PG, "deployer") is None
    assert CATALOG.permission("nope", "read_only") is None
    assert [p.name for p in CATALOG.permissions_of("deploy")] == ["deployer", "admin"]
    assert list(CATALOG.permissions_of("nope")) == []


def test_discovered_resources_join_the_static_ones_without_duplicates() -> None:
    discovered = {
        PG: [
            Resource(
                integration=PG, type="database", name="analytics", path="prod/eu", tags=(("env", "prod"),)
            ),
            Resource(integration=PG, type="database", name="billing", path="elsewhere"),
        ]
    }
    catalog = Catalog(CONFIG, discovered)
    assert f"{PG}/database/analytics" in catalog.resources
    assert catalog.resources[BILLING].path == "prod/eu"  # the static entry wins
    target = {"integration": PG, "permissions": ["read_only"], "resources": {"tags": {"env": "prod"}}}
    assert resolve(target, catalog) == pairs(
        [BILLING, LEDGER, REPORTING, f"{PG}/database/analytics"], "read_only"
    )


_names = st.lists(st.sampled_from(["billing", "ledger", "scratch", "reporting"]), min_size=1, unique=True)


@given(_names)
def test_names_and_except_partition_the_integration(names: list[str]) -> None:
    chosen = resolve({"integration": PG, "permissions": ["read_only"], "resources": {"names": names}})
    rest = resolve({"integration": PG, "permissions": ["read_only"], "resources": {"except": names}})
    everything = resolve({"integration": PG, "permissions": ["read_only"]})
    assert chosen | rest == everything and not chosen & rest
    assert {key.rsplit("/", 1)[1] for key, _ in chosen} == set(names)


def test_integration_target_defaults() -> None:
    target = IntegrationTarget.model_validate({"integration": PG, "permissions": ["read_only"]})
    assert target.resources.any is True and target.resource_type is None


def test_an_integrations_catalog_values_are_built_once_and_follow_a_copy() -> None:
    postgres = CONFIG.integrations[0]
    first, again = postgres.catalog_resources(), postgres.catalog_resources()
    assert all(a is b for a, b in zip(first, again, strict=True))  # the connector's values are the catalog's
    assert [r.key for r in first] == [f"prod-postgres/{r.type}/{r.name}" for r in postgres.resources]
    assert first[0].tags == (("env", "prod"), ("region", "eu")) and first[0].risk == "high"
    assert first[2].risk == "low" and first[0].source_id == "database:billing"
    assert first[0].tags is first[3].tags  # equal tags: one value

    renamed = postgres.model_copy(update={"name": "pg", "risk_level": "medium"})
    assert [r.key for r in renamed.catalog_resources()][:1] == ["pg/database/billing"]
    assert renamed.catalog_resources()[0].risk == "medium"
    assert postgres.catalog_resources()[0].key == "prod-postgres/database/billing"  # the original is unchanged
    shorter = postgres.model_copy(update={"resources": postgres.resources[:1]})
    assert [r.name for r in shorter.catalog_resources()] == ["billing"]


def test_equal_values_of_resources_are_one_value_and_the_config_still_round_trips() -> None:
    resources = CONFIG.integrations[0].resources
    assert resources[0].tags is resources[3].tags and resources[0].path is resources[3].path
    dumped = CONFIG.model_dump(mode="json", by_alias=True)
    assert Config.model_validate(dumped) == CONFIG
    assert dumped["integrations"][0]["resources"][2] == {
        "type": "database", "name": "scratch", "path": "dev/eu", "source_id": "",
        "tags": {"env": "staging", "region": "eu"}, "risk_level": "low",
    }
