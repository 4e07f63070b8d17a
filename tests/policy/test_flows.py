"""Flows (SPEC §3, §5): who may use which flow (requestors, windows, spaces), for whom, and which flow a
request falls under (choose_flow), with what it demands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.conditions import matches
from policy.errors import InvalidRequest, NotEligible
from policy.flows import MAX_RESOURCES_PER_REQUEST, CompiledPolicy, FlowChoice
from policy.identity import Identity
from policy.validation import load_config_text
from policy.windows import in_window

BULK = "\n".join(f"      - {{type: item, name: r{i:03}}}" for i in range(120))

FLOWS_CONFIG = f"""\
admins: [secops@example.com]
timezone: UTC
spaces:
  - name: payments
    admins: [pat@example.com]
    members: {{conditions: [{{attribute: group, values: [payments]}}]}}
  - name: open
integrations:
  - name: prod-postgres
    type: postgresql
    dsn_env: PROD_PG_DSN
    owners: [dba@example.com, U0DANA]
    resources:
      - {{type: database, name: billing}}
      - {{type: database, name: ledger}}
      - {{type: database, name: scratch}}
    permissions: {{read_only: {{}}, read_write: {{}}}}
  - name: deploy
    type: noop
    owners: [ben@example.com]
    resources: [{{type: service, name: billing-api}}, {{type: service, name: search-api}}]
    permissions: {{deployer: {{}}, admin: {{}}}}
  - name: oncall-groups
    type: slack_usergroup
    resources: [{{type: usergroup, name: incident-commanders}}]
    permissions: {{member: {{}}}}
  - name: payments
    type: noop
    resources: [{{type: service, name: payments-api}}]
    permissions: {{operator: {{}}}}
  - name: hr
    type: noop
    resources: [{{type: app, name: hr-portal}}]
    permissions: {{viewer: {{}}}}
  - name: wiki
    type: noop
    resources: [{{type: page, name: handbook}}]
    permissions: {{reader: {{}}}}
  - name: bulk
    type: noop
    resources:
{BULK}
    permissions: {{use: {{}}}}
flows:
  - name: db-read-sre
    requestors:
      match: all
      conditions:
        - {{attribute: group, values: [sre]}}
        - {{attribute: department, values: [eng]}}
    targets: [{{integration: prod-postgres, permissions: [read_only]}}]
    grant_for: 2h
  - name: db-read-long
    requestors: {{conditions: [{{attribute: group, values: [sre]}}]}}
    targets:
      - integration: prod-postgres
        permissions: [read_only, read_write]
        resources: {{names: [billing, ledger]}}
    grant_for: 8h
    approval: {{type: approvers, groups: [{{conditions: [{{attribute: group, values: [dba]}}]}}]}}
  - name: db-write-any
    requestors:
      match: any
      conditions:
        - {{attribute: group, values: [dba]}}
        - {{attribute: user, values: [alice@example.com]}}
    targets: [{{integration: prod-postgres, permissions: [read_write], resources: {{except: [scratch]}}}}]
    grant_for: 4h
    require_duration: true
    settings: {{require_mfa: true, require_justification: false}}
    approval: {{type: approvers, groups: [{{conditions: [{{attribute: group, values: [dba]}}]}}]}}
  - name: deploy-short
    requestors: {{conditions: [{{attribute: group, values: [backend]}}]}}
    targets: [{{integration: deploy, permissions: [deployer]}}]
    grant_for: 1h
    approval: {{type: approvers, groups: [{{conditions: [{{attribute: group, values: [dba]}}]}}]}}
  - name: deploy-long
    requestors: {{conditions: [{{attribute: group, values: [backend]}}]}}
    targets: [{{integration: deploy, permissions: [deployer]}}]
    grant_for: 3h
    approval: {{type: approvers, groups: [{{conditions: [{{attribute: group, values: [dba]}}]}}]}}
  - name: deploy-strict
    requestors: {{conditions: [{{attribute: group, values: [backend]}}]}}
    targets: [{{integration: deploy, permissions: [deployer, admin]}}]
    grant_for: 12h
    approval:
      type: approvers
      combine: all_of
      groups:
        - conditions: [{{attribute: group, values: [dba]}}]
        - conditions: [{{attribute: group, values: [security]}}]
  - name: tie-b
    requestors: {{conditions: [{{attribute: group, values: [tie]}}]}}
    targets: [{{integration: bulk, permissions: [use], resources: {{names: [r000]}}}}]
  - name: tie-a
    requestors: {{conditions: [{{attribute: group, values: [tie]}}]}}
    targets: [{{integration: bulk, permissions: [use], resources: {{names: [r000]}}}}]
  - name: night-ops
    when: {{from: "22:00", to: "06:00", timezone: Europe/Berlin}}
    requestors: {{conditions: [{{attribute: group, values: [sre]}}]}}
    targets: [{{integration: deploy, permissions: [admin]}}]
  - name: office-deploy
    when: {{days: [mon, tue, wed, thu, fri], from: "08:00", to: "18:00"}}
    requestors: {{conditions: [{{attribute: group, values: [backend]}}]}}
    targets: [{{integration: deploy, permissions: [admin], resources: {{names: [search-api]}}}}]
  - name: payments-ops
    space: payments
    requestors: {{conditions: [{{attribute: department, values: [eng]}}]}}
    targets: [{{integration: payments, permissions: [operator]}}]
  - name: open-space
    space: open
    requestors: {{conditions: [{{attribute: department, values: [eng]}}]}}
    targets: [{{integration: wiki, permissions: [reader]}}]
  - name: auto-commanders
    type: automatic
    requestors: {{conditions: [{{attribute: oncall, values: [sre-primary]}}]}}
    targets: [{{integration: oncall-groups, permissions: [member]}}]
  - name: hr-reports
    requestors: {{conditions: [{{attribute: group, values: [managers]}}]}}
    request_for: [themselves, direct_reports]
    targets: [{{integration: hr, permissions: [viewer]}}]
  - name: hr-contractors
    requestors: {{conditions: [{{attribute: group, values: [managers]}}]}}
    request_for: [others]
    grantees: {{match: any, conditions: [{{attribute: group, values: [contractors]}}]}}
    targets: [{{integration: hr, permissions: [viewer]}}]
    approval: {{type: approvers, groups: [{{conditions: [{{attribute: group, values: [hr]}}]}}]}}
  - name: wiki-staff
    requestors: {{conditions: [{{attribute: group, op: is_not, values: [contractors]}}]}}
    targets: [{{integration: wiki, permissions: [reader]}}]
  - name: bulk-any
    requestors: {{conditions: [{{attribute: group, values: [sre]}}]}}
    targets: [{{integration: bulk, permissions: [use]}}]
    grant_for: indefinite
"""
POLICY = CompiledPolicy(load_config_text(FLOWS_CONFIG))


def person(name: str, *groups: str, **extra: Any) -> Identity:
    return Identity(
        slack_id=f"U0{name.upper()}", email=f"{name}@example.com", groups=frozenset(groups), **extra
    )


ENG = {"department": "eng"}
ALICE = person("alice", "sre", attributes=ENG)
SAM = person("sam", "sre", attributes={"department": "sales"})
DANA = person("dana", "dba")
BEN = person("ben", "backend")
PAT = person("pat", "payments", attributes=ENG)
ERIC = person("eric", attributes=ENG)
MONA = person("mona", "managers")
CONNIE = person("connie", "contractors", manager="mona@example.com")
RAY = person("ray", manager="U0MONA")
CARL = person("carl", "contractors")
OLLIE = person("ollie", "contractors", oncall=frozenset({"sre-primary"}))
TESS = person("tess", "tie", "contractors")
GONE = person("gone", "sre", attributes=ENG, deactivated=True)
ROBOT = person("robot", "sre", attributes=ENG, is_bot=True)
SECOPS = person("secops", "contractors")

NOON = datetime(2026, 1, 7, 12, tzinfo=UTC)  # a Wednesday
BERLIN_NIGHT = datetime(2026, 1, 7, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
SATURDAY_NOON = datetime(2026, 1, 10, 12, tzinfo=UTC)

USABLE: list[Any] = [
    # (description, identity, now, kind, expected flow names)
    (
        "match all: sre in eng gets both sre flows, and db-write-any by her user",
        ALICE,
        NOON,
        "self_serve",
        ["bulk-any", "db-read-long", "db-read-sre", "db-write-any", "open-space", "wiki-staff"],
    ),
    (
        "match all: sre outside eng misses db-read-sre",
        SAM,
        NOON,
        "self_serve",
        ["bulk-any", "db-read-long", "wiki-staff"],
    ),
    ("match any: dba by group", DANA, NOON, "self_serve", ["db-write-any", "wiki-staff"]),
    (
        "backend in office hours",
        BEN,
        NOON,
        "self_serve",
        ["deploy-long", "deploy-short", "deploy-strict", "office-deploy", "wiki-staff"],
    ),
    (
        "backend on Saturday: office window closed",
        BEN,
        SATURDAY_NOON,
        "self_serve",
        ["deploy-long", "deploy-short", "deploy-strict", "wiki-staff"],
    ),
    (
        "sre at night in Berlin: the night window is open",
        ALICE,
        BERLIN_NIGHT,
        "self_serve",
        ["bulk-any", "db-read-long", "db-read-sre", "db-write-any", "night-ops", "open-space", "wiki-staff"],
    ),
    (
        "a space flow is offered to space members",
        PAT,
        NOON,
        "self_serve",
        ["open-space", "payments-ops", "wiki-staff"],
    ),
    ("a space flow is hidden from non-members", ERIC, NOON, "self_serve", ["open-space", "wiki-staff"]),
    (
        "a space without members still needs the flow's requestors",
        SAM,
        NOON,
        "self_serve",
        ["bulk-any", "db-read-long", "wiki-staff"],
    ),
    ("contractors match nothing (is_not)", CARL, NOON, "self_serve", []),
    ("automatic flows are asked for by kind", OLLIE, NOON, "automatic", ["auto-commanders"]),
    ("automatic flows are not self-serve", OLLIE, NOON, "self_serve", []),
    ("no automatic flow for someone off shift", ALICE, NOON, "automatic", []),
    ("a deactivated user gets nothing", GONE, NOON, "self_serve", []),
    ("a bot gets nothing", ROBOT, NOON, "self_serve", []),
    ("nobody at all", Identity(slack_id=None, email=None), NOON, "self_serve", ["wiki-staff"]),
]


@pytest.mark.parametrize(
    ("identity", "now", "kind", "expected"), [pytest.param(*c[1:], id=c[0]) for c in USABLE]
)
def test_usable_flows(identity: Identity, now: datetime, kind: str, expected: list[str]) -> None:
    assert [c.name for c in POLICY.usable_flows(identity, now, kind=kind)] == expected


WINDOW: list[Any] = [
    # (description, moment in UTC, whether night-ops (22:00–06:00 Europe/Berlin) is offered)
    ("21:59 Berlin (winter)", "2026-01-07T20:59:00", False),
    ("22:00 Berlin (winter)", "2026-01-07T21:00:00", True),
    ("05:59 Berlin (winter)", "2026-01-08T04:59:00", True),
    ("06:00 Berlin (winter)", "2026-01-08T05:00:00", False),
    ("22:00 Berlin (summer)", "2026-07-07T20:00:00", True),
    ("spring-forward night, 03:30 CEST", "2026-03-29T01:30:00", True),
    ("spring-forward night, 06:00 CEST", "2026-03-29T04:00:00", False),
    ("fall-back night, 05:30 CET", "2026-10-25T04:30:00", True),
    ("fall-back night, 06:00 CET", "2026-10-25T05:00:00", False),
]


@pytest.mark.parametrize(("moment", "offered"), [pytest.param(*c[1:], id=c[0]) for c in WINDOW])
def test_outside_its_window_a_flow_offers_nothing(moment: str, offered: bool) -> None:
    with freeze_time(moment):
        now = datetime.now(UTC)
        names = [c.name for c in POLICY.usable_flows(ALICE, now)]
        permissions = [p.name for p in POLICY.permissions_for(ALICE, now, "deploy/service/billing-api")]
        found = [r.key for r in POLICY.requestable_resources(ALICE, now, "api")]
    assert ("night-ops" in names) is offered
    assert permissions == (["admin"] if offered else [])
    assert found == (["deploy/service/billing-api", "deploy/service/search-api"] if offered else [])


PG = "prod-postgres/database"

CHOICES: list[Any] = [
    # (description, requester, resource keys, permission, grantees, expected flow, automatic, max duration)
    (
        "automatic flow beats one needing approval",
        ALICE,
        [f"{PG}/billing"],
        "read_only",
        (),
        "db-read-sre",
        True,
        timedelta(hours=2),
    ),
    (
        "only the flow that covers scratch",
        ALICE,
        [f"{PG}/scratch"],
        "read_only",
        (),
        "db-read-sre",
        True,
        timedelta(hours=2),
    ),
    (
        "match all unmet: the approval flow",
        SAM,
        [f"{PG}/billing"],
        "read_only",
        (),
        "db-read-long",
        False,
        timedelta(hours=8),
    ),
    (
        "same approvals: the longer grant_for wins",
        ALICE,
        [f"{PG}/billing"],
        "read_write",
        (),
        "db-read-long",
        False,
        timedelta(hours=8),
    ),
    (
        "fewer approvals beat a longer grant_for",
        BEN,
        ["deploy/service/billing-api"],
        "deployer",
        (),
        "deploy-long",
        False,
        timedelta(hours=3),
    ),
    (
        "only the all_of flow offers admin",
        BEN,
        ["deploy/service/billing-api"],
        "admin",
        (),
        "deploy-strict",
        False,
        timedelta(hours=12),
    ),
    (
        "a permission from a window flow",
        BEN,
        ["deploy/service/search-api"],
        "admin",
        (),
        "office-deploy",
        True,
        timedelta(hours=1),
    ),
    (
        "everything equal: the name decides",
        TESS,
        ["bulk/item/r000"],
        "use",
        (),
        "tie-a",
        True,
        timedelta(hours=1),
    ),
    (
        "several resources in one request",
        ALICE,
        [f"{PG}/billing", f"{PG}/scratch", f"{PG}/ledger"],
        "read_only",
        (),
        "db-read-sre",
        True,
        timedelta(hours=2),
    ),
    (
        "duplicates of a resource count once",
        SAM,
        [f"{PG}/billing", f"{PG}/billing"],
        "read_only",
        (),
        "db-read-long",
        False,
        timedelta(hours=8),
    ),
    (
        "101 picks of 100 distinct resources",
        ALICE,
        [f"bulk/item/r{i:03}" for i in range(100)] + ["bulk/item/r000"],
        "use",
        (),
        "bulk-any",
        True,
        None,
    ),
    (
        "exactly 100 resources",
        ALICE,
        [f"bulk/item/r{i:03}" for i in range(100)],
        "use",
        (),
        "bulk-any",
        True,
        None,
    ),
    ("for themselves", MONA, ["hr/app/hr-portal"], "viewer", (MONA,), "hr-reports", True, timedelta(hours=1)),
    (
        "for a direct report (manager by email)",
        MONA,
        ["hr/app/hr-portal"],
        "viewer",
        (CONNIE,),
        "hr-reports",
        True,
        timedelta(hours=1),
    ),
    (
        "for a direct report (manager by Slack id)",
        MONA,
        ["hr/app/hr-portal"],
        "viewer",
        (RAY,),
        "hr-reports",
        True,
        timedelta(hours=1),
    ),
    (
        "for a contractor who is not a report",
        MONA,
        ["hr/app/hr-portal"],
        "viewer",
        (CARL,),
        "hr-contractors",
        False,
        timedelta(hours=1),
    ),
    (
        "for two reports",
        MONA,
        ["hr/app/hr-portal"],
        "viewer",
        (CONNIE, RAY),
        "hr-reports",
        True,
        timedelta(hours=1),
    ),
    (
        "a space member in the space flow",
        PAT,
        ["payments/service/payments-api"],
        "operator",
        (),
        "payments-ops",
        True,
        timedelta(hours=1),
    ),
]


@pytest.mark.parametrize(
    ("requester", "keys", "permission", "grantees", "flow", "automatic", "max_duration"),
    [pytest.param(*c[1:], id=c[0]) for c in CHOICES],
)
def test_choose_flow(
    requester: Identity,
    keys: list[str],
    permission: str,
    grantees: tuple[Identity, ...],
    flow: str,
    automatic: bool,
    max_duration: timedelta | None,
) -> None:
    choice = POLICY.choose_flow(requester, NOON, keys, permission, grantees)
    assert choice.flow.name == flow
    assert choice.automatic_approval is automatic
    assert choice.max_duration == max_duration
    assert choice.permission.name == permission
    assert [r.key for r in choice.resources] == list(dict.fromkeys(keys))


def test_a_choice_carries_what_the_flow_demands() -> None:
    choice = POLICY.choose_flow(DANA, NOON, [f"{PG}/billing"], "read_write")
    assert choice.flow.name == "db-write-any"
    assert (choice.require_duration, choice.require_mfa, choice.require_justification) == (True, True, False)
    plain = POLICY.choose_flow(ALICE, NOON, [f"{PG}/billing"], "read_only")
    assert (plain.require_duration, plain.require_mfa, plain.require_justification) == (False, False, True)
    flow = choice.flow
    assert type(choice) is FlowChoice
    assert choice == FlowChoice(
        flow=flow,
        resources=(POLICY.catalog.resources[f"{PG}/billing"],),
        permission=POLICY.catalog.permissions["prod-postgres"]["read_write"],
        max_duration=timedelta(hours=4),
        require_duration=True,
        require_mfa=True,
        require_justification=False,
        automatic_approval=False,
    )


REFUSALS: list[Any] = [
    # (description, requester, keys, permission, grantees, error, field, words in the message)
    ("no resource", ALICE, [], "read_only", (), InvalidRequest, "resource", "at least one resource"),
    (
        "more than 100 resources",
        ALICE,
        [f"bulk/item/r{i:03}" for i in range(MAX_RESOURCES_PER_REQUEST + 1)],
        "use",
        (),
        InvalidRequest,
        "resource",
        "at most 100 resources",
    ),
    (
        "an unknown resource",
        ALICE,
        [f"{PG}/nope"],
        "read_only",
        (),
        InvalidRequest,
        "resource",
        "Unknown resource",
    ),
    (
        "resources of two integrations",
        ALICE,
        [f"{PG}/billing", "bulk/item/r000"],
        "read_only",
        (),
        InvalidRequest,
        "resource",
        "one integration",
    ),
    (
        "a permission the integration lacks",
        ALICE,
        [f"{PG}/billing"],
        "deployer",
        (),
        InvalidRequest,
        "permission",
        "Unknown permission",
    ),
    (
        "a permission no flow offers on it",
        ALICE,
        [f"{PG}/scratch"],
        "read_write",
        (),
        NotEligible,
        "resource",
        "No access flow lets you request read_write on scratch",
    ),
    (
        "a resource outside the flow's targets",
        SAM,
        [f"{PG}/scratch"],
        "read_only",
        (),
        NotEligible,
        "resource",
        "No access flow",
    ),
    (
        "one of several resources outside the targets",
        SAM,
        [f"{PG}/billing", f"{PG}/scratch"],
        "read_only",
        (),
        NotEligible,
        "resource",
        "billing, scratch",
    ),
    (
        "a space flow for a non-member",
        ERIC,
        ["payments/service/payments-api"],
        "operator",
        (),
        NotEligible,
        "resource",
        "No access flow",
    ),
    (
        "a flow outside its window",
        ALICE,
        ["deploy/service/billing-api"],
        "admin",
        (),
        NotEligible,
        "resource",
        "right now",
    ),
    (
        "a deactivated requester",
        GONE,
        [f"{PG}/billing"],
        "read_only",
        (),
        NotEligible,
        "resource",
        "No access flow",
    ),
    (
        "for somebody else under a themselves-only flow",
        ALICE,
        [f"{PG}/billing"],
        "read_only",
        (SAM,),
        NotEligible,
        "grantees",
        "may not request access for sam@example.com",
    ),
    (
        "for a non-contractor who is not a report",
        MONA,
        ["hr/app/hr-portal"],
        "viewer",
        (DANA,),
        NotEligible,
        "grantees",
        "dana@example.com",
    ),
    (
        "a report and a non-report contractor at once",
        MONA,
        ["hr/app/hr-portal"],
        "viewer",
        (RAY, CARL),
        NotEligible,
        "grantees",
        "may not request",
    ),
    (
        "for a deactivated grantee",
        MONA,
        ["hr/app/hr-portal"],
        "viewer",
        (Identity("U0X", "x@example.com", groups=frozenset({"contractors"}), deactivated=True),),
        NotEligible,
        "grantees",
        "not an active user",
    ),
]


@pytest.mark.parametrize(
    ("requester", "keys", "permission", "grantees", "error", "field", "words"),
    [pytest.param(*c[1:], id=c[0]) for c in REFUSALS],
)
def test_choose_flow_refuses(
    requester: Identity,
    keys: list[str],
    permission: str,
    grantees: tuple[Identity, ...],
    error: type[Exception],
    field: str,
    words: str,
) -> None:
    with pytest.raises(error) as caught:
        POLICY.choose_flow(requester, NOON, keys, permission, grantees)
    assert caught.value.field == field  # type: ignore[attr-defined]
    assert words in caught.value.message  # type: ignore[attr-defined]


GRANTEES: list[Any] = [
    # (description, flow, requester, grantees, refused (None = allowed) or words of the refusal)
    ("themselves by default", "db-read-sre", ALICE, (), None),
    ("themselves named explicitly", "db-read-sre", ALICE, (ALICE,), None),
    ("themselves, known by Slack id only", "db-read-sre", ALICE, (Identity("U0ALICE", None),), None),
    (
        "others under a themselves-only flow",
        "db-read-sre",
        ALICE,
        (SAM,),
        "may not request access for sam@example.com",
    ),
    ("a report under a themselves-only flow", "db-read-sre", MONA, (CONNIE,), "may not request"),
    ("a report under direct_reports", "hr-reports", MONA, (CONNIE,), None),
    ("somebody else's report under direct_reports", "hr-reports", ALICE, (CONNIE,), "may not request"),
    (
        "themselves under an others-only flow",
        "hr-contractors",
        MONA,
        (),
        "does not let you request for yourself",
    ),
    ("a grantee matching the grantee conditions", "hr-contractors", MONA, (CARL,), None),
    ("a grantee not matching the grantee conditions", "hr-contractors", MONA, (DANA,), "dana@example.com"),
    (
        "a deactivated grantee",
        "hr-contractors",
        MONA,
        (person("old", "contractors", deactivated=True),),
        "not an active user",
    ),
    (
        "a bot grantee",
        "hr-contractors",
        MONA,
        (person("bot", "contractors", is_bot=True),),
        "not an active user",
    ),
    ("the first refused grantee of several", "hr-contractors", MONA, (CARL, DANA, SAM), "dana@example.com"),
]


@pytest.mark.parametrize(
    ("flow", "requester", "grantees", "refused"), [pytest.param(*c[1:], id=c[0]) for c in GRANTEES]
)
def test_grantee_refusal(
    flow: str, requester: Identity, grantees: tuple[Identity, ...], refused: str | None
) -> None:
    reason = POLICY.grantee_refusal(POLICY.flows[flow].flow, requester, grantees)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason


def test_grantees_without_conditions_may_be_anybody() -> None:
    config = load_config_text(
        FLOWS_CONFIG.replace(
            "    grantees: {match: any, conditions: [{attribute: group, values: [contractors]}]}\n", ""
        )
    )
    flow = CompiledPolicy(config).flows["hr-contractors"].flow
    assert POLICY.grantee_refusal(flow, MONA, (DANA, CARL)) is None


PERMISSIONS: list[Any] = [
    # (description, identity, now, resource key, expected permission names)
    ("both permissions from different flows", ALICE, NOON, f"{PG}/billing", ["read_only", "read_write"]),
    ("scratch is read-only for her", ALICE, NOON, f"{PG}/scratch", ["read_only"]),
    ("nothing on scratch without db-read-sre", SAM, NOON, f"{PG}/scratch", []),
    ("read-write only for a dba", DANA, NOON, f"{PG}/ledger", ["read_write"]),
    (
        "deploy permissions follow the resource",
        BEN,
        NOON,
        "deploy/service/billing-api",
        ["deployer", "admin"],
    ),
    (
        "an office-hours permission on Saturday",
        BEN,
        SATURDAY_NOON,
        "deploy/service/search-api",
        ["deployer", "admin"],
    ),
    (
        "another resource of the same integration",
        BEN,
        NOON,
        "deploy/service/search-api",
        ["deployer", "admin"],
    ),
    ("nothing for someone outside the requestors", ERIC, NOON, f"{PG}/billing", []),
    ("an unknown resource", ALICE, NOON, f"{PG}/nope", []),
]


@pytest.mark.parametrize(
    ("identity", "now", "key", "expected"), [pytest.param(*c[1:], id=c[0]) for c in PERMISSIONS]
)
def test_permissions_for_follow_the_chosen_resource(
    identity: Identity, now: datetime, key: str, expected: list[str]
) -> None:
    assert [p.name for p in POLICY.permissions_for(identity, now, key)] == expected


def test_every_offered_permission_can_be_chosen() -> None:
    """What the modal offers (permissions_for) is exactly what choose_flow accepts."""
    for identity in (ALICE, SAM, DANA, BEN, PAT, ERIC, MONA):
        for key, resource in POLICY.catalog.resources.items():
            offered = {p.name for p in POLICY.permissions_for(identity, NOON, key)}
            for permission in POLICY.catalog.permissions_of(resource.integration):
                try:
                    POLICY.choose_flow(identity, NOON, [key], permission.name)
                except NotEligible:
                    assert permission.name not in offered, (identity.email, key, permission.name)
                else:
                    assert permission.name in offered, (identity.email, key, permission.name)


SEARCHES: list[Any] = [
    # (description, identity, text, limit, expected keys)
    ("name starts with the text first", ALICE, "ledger", 100, [f"{PG}/ledger"]),
    ("contains, case-insensitive", ALICE, "SCRAT", 100, [f"{PG}/scratch"]),
    ("by integration name", DANA, "postgres", 100, [f"{PG}/billing", f"{PG}/ledger"]),
    ("by type", BEN, "service", 100, ["deploy/service/billing-api", "deploy/service/search-api"]),
    ("prefix matches before other matches", BEN, "search", 100, ["deploy/service/search-api"]),
    ("limit", ALICE, "r0", 3, ["bulk/item/r000", "bulk/item/r001", "bulk/item/r002"]),
    ("nothing for someone without flows", CARL, "", 100, []),
    (
        "a space member sees the space's resources",
        PAT,
        "",
        100,
        ["wiki/page/handbook", "payments/service/payments-api"],
    ),
]


@pytest.mark.parametrize(
    ("identity", "text", "limit", "expected"), [pytest.param(*c[1:], id=c[0]) for c in SEARCHES]
)
def test_requestable_resources(identity: Identity, text: str, limit: int, expected: list[str]) -> None:
    assert [r.key for r in POLICY.requestable_resources(identity, NOON, text, limit=limit)] == expected


ADMINS: list[Any] = [
    # (description, identity, space, expected)
    ("a global admin", person("secops"), None, True),
    ("a global admin in any space", person("secops"), "payments", True),
    ("a global admin by email in another case", Identity("U9", "SecOps@Example.com"), None, True),
    ("a space admin outside the space", PAT, None, False),
    ("a space admin in the space", PAT, "payments", True),
    ("a space admin in another space", PAT, "open", False),
    ("a space admin in an unknown space", PAT, "nope", False),
    ("anybody else", ALICE, "payments", False),
]


@pytest.mark.parametrize(("identity", "space", "expected"), [pytest.param(*c[1:], id=c[0]) for c in ADMINS])
def test_is_admin(identity: Identity, space: str | None, expected: bool) -> None:
    assert POLICY.is_admin(identity, space=space) is expected


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        pytest.param(person("dba"), {"prod-postgres"}, id="owner by email"),
        pytest.param(DANA, {"prod-postgres"}, id="owner by Slack id"),
        pytest.param(BEN, {"deploy"}, id="owner of another integration"),
        pytest.param(ALICE, set(), id="owns nothing"),
    ],
)
def test_owned_integrations(identity: Identity, expected: set[str]) -> None:
    assert POLICY.owned_integrations(identity) == frozenset(expected)


# --- the compiled decisions agree with the rules read plainly -----------------------------------------------


def plain_usable(identity: Identity, now: datetime, kind: str = "self_serve") -> list[str]:
    """SPEC §3/§5 read literally: every flow of the file, no index, no cache."""
    config = POLICY.config
    spaces = {s.name: s for s in config.spaces}
    names = []
    for flow in config.flows:
        if flow.type != kind or identity.deactivated or identity.is_bot:
            continue
        if not in_window(flow.when, now, config.timezone):
            continue
        space = spaces.get(flow.space) if flow.space else None
        if space is not None and space.members is not None and not matches(space.members, identity):
            continue
        if matches(flow.requestors, identity):
            names.append(flow.name)
    return sorted(names)


def plain_choice(
    requester: Identity, now: datetime, keys: list[str], permission: str, grantees: tuple[Identity, ...]
) -> object:
    """The chosen flow's name, or the refusal (error type, field, message), without compiled indexes."""
    try:
        resources = [POLICY.catalog.resources[k] for k in dict.fromkeys(keys)]
        wanted = POLICY.catalog.permissions[resources[0].integration][permission]
    except (KeyError, IndexError):
        return "invalid request"
    if len({r.integration for r in resources}) != 1 or len(resources) > MAX_RESOURCES_PER_REQUEST:
        return "invalid request"
    allowing = []
    for name in plain_usable(requester, now):
        flow = POLICY.config.flows[[f.name for f in POLICY.config.flows].index(name)]
        rules = [rule for target in flow.targets for rule in POLICY.catalog.rules_for(target)]
        if all(any(rule.allows(r, wanted) for rule in rules) for r in resources):
            allowing.append(flow)
    if not allowing:
        return (NotEligible, "resource")
    fitting = [f for f in allowing if POLICY.grantee_refusal(f, requester, grantees) is None]
    if not fitting:
        return (NotEligible, "grantees", POLICY.grantee_refusal(allowing[0], requester, grantees))
    needed = {
        f.name: 0
        if f.approval.type == "automatic"
        else (len(f.approval.groups) if f.approval.combine == "all_of" else 1)
        for f in fitting
    }
    best = min(
        fitting, key=lambda f: (needed[f.name], -(f.grant_for or timedelta.max).total_seconds(), f.name)
    )
    return best.name


def compiled_choice(
    requester: Identity, now: datetime, keys: list[str], permission: str, grantees: tuple[Identity, ...]
) -> object:
    try:
        return POLICY.choose_flow(requester, now, keys, permission, grantees).flow.name
    except InvalidRequest:
        return "invalid request"
    except NotEligible as error:
        if error.field == "grantees":
            return (NotEligible, error.field, error.message)
        return (NotEligible, error.field)


PEOPLE = [ALICE, SAM, DANA, BEN, PAT, ERIC, MONA, CONNIE, RAY, CARL, OLLIE, TESS, GONE, ROBOT]
RESOURCE_KEYS = sorted(
    k for k in POLICY.catalog.resources if not k.startswith("bulk/item/r0") or k.endswith("0")
)
PERMISSION_NAMES = sorted({p for perms in POLICY.catalog.permissions.values() for p in perms})
_moments = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@given(
    st.sampled_from(PEOPLE),
    _moments,
    st.lists(st.sampled_from(RESOURCE_KEYS), min_size=1, max_size=3),
    st.sampled_from(PERMISSION_NAMES),
    st.lists(st.sampled_from(PEOPLE), max_size=2).map(tuple),
)
@settings(max_examples=400, deadline=None)
def test_choose_flow_agrees_with_the_plain_reading(
    requester: Identity, now: datetime, keys: list[str], permission: str, grantees: tuple[Identity, ...]
) -> None:
    assert compiled_choice(requester, now, keys, permission, grantees) == plain_choice(
        requester, now, keys, permission, grantees
    )


@given(st.sampled_from(PEOPLE), _moments, st.sampled_from(["self_serve", "automatic"]))
def test_usable_flows_agree_with_the_plain_reading(identity: Identity, now: datetime, kind: str) -> None:
    assert [c.name for c in POLICY.usable_flows(identity, now, kind=kind)] == plain_usable(
        identity, now, kind
    )


def test_the_identity_cache_tells_identities_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remembered per identity: each attribute a condition reads makes another entry; eviction is safe."""
    policy = CompiledPolicy(POLICY.config)
    monkeypatch.setattr("policy.flow_index.IDENTITY_CACHE_SIZE", 3)
    variants = [
        ALICE,
        Identity(ALICE.slack_id, ALICE.email, groups=ALICE.groups, attributes={"department": "sales"}),
        Identity(ALICE.slack_id, ALICE.email, groups=frozenset({"dba"}), attributes=ENG),
        Identity(ALICE.slack_id, ALICE.email, groups=ALICE.groups, attributes=ENG, deactivated=True),
        Identity(ALICE.slack_id, ALICE.email, groups=frozenset({"sre"}), oncall=frozenset({"sre-primary"})),
        Identity("U0OTHER", "other@example.com", groups=ALICE.groups, attributes=ENG),
    ]
    for _ in range(2):
        for identity in variants:
            for kind in ("self_serve", "automatic"):
                found = [c.name for c in policy.usable_flows(identity, NOON, kind=kind)]
                assert found == plain_usable(identity, NOON, kind)
    assert all(len(cache) <= 3 for cache in policy._index._by_identity.values())
