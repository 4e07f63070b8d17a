# ruff: noqa: E501  (the SPEC §3 example below is copied verbatim, long comments included)
"""Config validation (SPEC §3): the normative example validates; every bad config names the YAML path and line."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml

from policy.config import Config
from policy.validation import ConfigError, ConfigProblem, load_config_file, load_config_text, warnings

# SPEC §3, verbatim: normative for names and meaning.
SPEC_EXAMPLE = """\
admins: [secops@example.com]            # may revoke anything, see everything
spaces:                                 # optional: teams that own their flows (a flow without `space` is global)
  - name: payments
    admins: [pat@example.com]           # see and revoke within the space
    members: {conditions: [{attribute: group, op: is, values: [payments]}]}   # who sees the space's flows
audit_channel: C0AUDIT                  # optional: every lifecycle event is posted here
timezone: UTC                           # default for windows and messages

directory:                              # identity attributes beyond Slack's own profile
  slack_usergroups: true                # a Slack user group's handle counts as a group
  users:
    - email: alice@example.com
      groups: [sre]
      manager: carol@example.com
      attributes: {department: eng}
  oncall:                               # on-call shifts: attribute `oncall` = schedule name
    - schedule: sre-primary
      timezone: Europe/Berlin
      rotation: {every: 7d, starts: 2026-01-05T09:00, members: [alice@example.com, bob@example.com]}
    - schedule: payments-oncall           # or read from the incident tool (cached; an outage never revokes)
      pagerduty: {schedule_id: PABC123, token_env: PAGERDUTY_TOKEN}
    - schedule: payments-secondary
      opsgenie: {schedule: payments, token_env: OPSGENIE_TOKEN}

integrations:
  - name: prod-postgres
    type: postgresql
    dsn_env: PROD_PG_DSN                # secrets come from the environment, never the file
    owners: [dba@example.com]           # attribute `owner` for approvers
    risk_level: high
    resources:                          # or `discover: true` to list databases/schemas from the server
      - {type: database, name: billing, path: prod/eu, tags: {env: prod, region: eu}}
    permissions:
      read_only: {roles: [billing_ro]}
      read_write: {roles: [billing_rw], risk_level: high}
  - name: oncall-groups
    type: slack_usergroup
    resources: [{type: usergroup, name: incident-commanders}]
    permissions: {member: {}}
  - name: deploy
    type: webhook
    url: https://deploy.internal/jit
    secret_env: DEPLOY_HOOK_SECRET      # HMAC-SHA256 signature of each call
    resources:                          # every integration type takes a static `resources` list
      - {type: service, name: billing-api, tags: {env: prod}}
      - {type: service, name: search-api, tags: {env: prod}}
    permissions: {deployer: {}, admin: {risk_level: high}}

bundles:
  - name: billing-debug
    targets:
      - {integration: prod-postgres, resource_type: database, permissions: [read_only], resources: {names: [billing]}}

access_scopes:                          # named resource queries (the query language, section 4)
  - name: eu-prod
    query: 'resource_tag.region = "eu" and resource_tag.env = "prod"'

flows:
  - name: prod-db-read
    type: self_serve                    # or automatic
    # space: payments                   # optional: only members of that space can use the flow
    labels: [prod, db]
    when: always                        # or {days: [mon, tue, wed, thu, fri], from: "08:00", to: "20:00", timezone: Europe/Berlin}
    requestors:
      match: all                        # all = AND (default), any = OR
      conditions:
        - {attribute: group, op: is, values: [sre, backend]}
    request_for: [themselves, direct_reports, others]    # default [themselves]
    grantees:                           # who may be requested for, when `others` is allowed
      match: any
      conditions: [{attribute: group, op: is, values: [sre, contractors]}]
    targets:
      - {integration: prod-postgres, resource_type: database, permissions: [read_only, read_write], resources: {any: true}}
      - {bundle: billing-debug}
      - {access_scope: eu-prod, permissions: [read_only]}
    grant_for: 4h                       # max duration; `indefinite` allowed; default 1h
    require_duration: true              # the requester must pick hours (fractions allowed) up to grant_for
    extend: {max_times: 3, each: 30m}   # max_times <= 10, each <= grant_for; default each 30m
    approval:
      type: approvers                   # or automatic (default)
      combine: any_of                   # any_of: one approval from any group; all_of: one per group
      channel: C0DBA                    # optional: also post the request, with Approve/Deny, to this channel
      notify: both                      # dm (default) | channel | both
      distinct_approvers: false         # all_of only: true = each group needs a different person
      groups:
        - match: any
          conditions: [{attribute: group, op: is, values: [dba]}, {attribute: owner, op: is, values: [true]}]
        - conditions: [{attribute: oncall, op: is, values: [sre-primary]}]
      escalation:                       # optional; needs type approvers
        every: 30m
        tiers:
          - conditions: [{attribute: user, op: is, values: [cto@example.com]}]
      pending_timeout: 24h              # unanswered requests expire
    settings:
      require_mfa: true
      require_justification: true
      require_approver_reason: true     # reason <= 124 characters on approve and deny
      no_self_approval: true            # requester and grantee can never approve
      break_glass: false                # true: granted at once; approvers review afterwards
    description: ''                     # empty: generated from name, requestors and resources
"""

MINIMAL = """\
integrations:
  - name: deploy
    type: noop
    resources: [{type: service, name: billing-api}]
    permissions: {deployer: {}}
flows:
  - name: deployers
    requestors: {conditions: [{attribute: group, values: [sre]}]}
    targets: [{integration: deploy, permissions: [deployer]}]
"""


def spec_with(*replacements: tuple[str, str]) -> str:
    """The SPEC example with each ``old`` text (which must occur exactly once) replaced by ``new``."""
    text = SPEC_EXAMPLE
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
        text = text.replace(old, new)
    return text


def minimal_with(*replacements: tuple[str, str]) -> str:
    text = MINIMAL
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
        text = text.replace(old, new)
    return text


def line_of(text: str, marker: str) -> int:
    """The 1-based line of the first occurrence of ``marker``."""
    assert marker in text, marker
    return text[: text.index(marker)].count("\n") + 1


SIX_TIERS = "\n".join(["          - conditions: [{attribute: user, op: is, values: [cto@example.com]}]"] * 6)

BAD_CONFIGS: list[Any] = [
    # (description, text, [(expected path, text on the expected line), ...])
    (
        "typo'd top-level key",
        spec_with(("audit_channel: C0AUDIT", "audit_chanel: C0AUDIT")),
        [("audit_chanel", "audit_chanel")],
    ),
    (
        "typo'd flow key",
        spec_with(("    grant_for: 4h ", "    grant_fro: 4h ")),
        [("flows[0].grant_fro", "grant_fro")],
    ),
    (
        "typo'd key in flow settings",
        spec_with(("require_approver_reason: true", "require_approver_reasons: true")),
        [("flows[0].settings.require_approver_reasons", "require_approver_reasons")],
    ),
    (
        "typo'd key in an approver condition (and so the attribute is missing)",
        spec_with(("- conditions: [{attribute: oncall,", "- conditions: [{atribute: oncall,")),
        [
            ("flows[0].approval.groups[1].conditions[0].attribute", "atribute: oncall"),
            ("flows[0].approval.groups[1].conditions[0].atribute", "atribute: oncall"),
        ],
    ),
    (
        "typo'd key in an integration resource",
        spec_with(
            (
                "{type: database, name: billing, path: prod/eu, tags:",
                "{type: database, name: billing, path: prod/eu, tag:",
            )
        ),
        [("integrations[0].resources[0].tag", "tag: {env: prod")],
    ),
    (
        "typo'd key in a postgresql integration (and so dsn_env is missing)",
        spec_with(("dsn_env: PROD_PG_DSN ", "dsn_envv: PROD_PG_DSN ")),
        [("integrations[0].dsn_env", "- name: prod-postgres"), ("integrations[0].dsn_envv", "dsn_envv")],
    ),
    (
        "typo'd key in a directory user",
        spec_with(("      manager: carol@example.com", "      manger: carol@example.com")),
        [("directory.users[0].manger", "manger:")],
    ),
    (
        "typo'd key in an on-call rotation (and so every is missing)",
        spec_with(("rotation: {every: 7d,", "rotation: {evry: 7d,")),
        [
            ("directory.oncall[0].rotation.every", "rotation:"),
            ("directory.oncall[0].rotation.evry", "rotation:"),
        ],
    ),
    (
        "typo'd key in a space",
        spec_with(("    admins: [pat@example.com]", "    admin: [pat@example.com]")),
        [("spaces[0].admin", "admin: [pat")],
    ),
    (
        "typo'd key in a target",
        spec_with(("{bundle: billing-debug}", "{bundle: billing-debug, permission: [read_only]}")),
        [("flows[0].targets[1].permission", "{bundle: billing-debug, permission")],
    ),
    (
        "a target with no known kind key",
        spec_with(("  - {bundle: billing-debug}", "  - {bundel: billing-debug}")),
        [("flows[0].targets[1]", "{bundel: billing-debug}")],
    ),
    (
        "typo'd key in escalation",
        spec_with(("        every: 30m", "        evry: 30m")),
        [("flows[0].approval.escalation.evry", "evry: 30m")],
    ),
    (
        "bad op",
        spec_with(("op: is, values: [sre, backend]", "op: equals, values: [sre, backend]")),
        [("flows[0].requestors.conditions[0].op", "op: equals")],
    ),
    (
        "bad match",
        spec_with(("      match: all ", "      match: every ")),
        [("flows[0].requestors.match", "match: every")],
    ),
    (
        "extend.max_times 11",
        spec_with(("max_times: 3", "max_times: 11")),
        [("flows[0].extend.max_times", "max_times: 11")],
    ),
    (
        "extend.each longer than grant_for",
        spec_with(("each: 30m}", "each: 5h}")),
        [("flows[0].extend.each", "extend: {max_times: 3, each: 5h}")],
    ),
    (
        "grant_for -1h",
        spec_with(("grant_for: 4h", "grant_for: -1h")),
        [("flows[0].grant_for", "grant_for: -1h")],
    ),
    (
        "extend.each -1h",
        spec_with(("each: 30m}", "each: -1h}")),
        [("flows[0].extend.each", "each: -1h")],
    ),
    (
        "pending_timeout -1h",
        spec_with(("pending_timeout: 24h", "pending_timeout: -1h")),
        [("flows[0].approval.pending_timeout", "pending_timeout: -1h")],
    ),
    (
        "escalation every 0",
        spec_with(("        every: 30m", "        every: 0")),
        [("flows[0].approval.escalation.every", "every: 0")],
    ),
    (
        "rotation every -1h",
        spec_with(("rotation: {every: 7d,", "rotation: {every: -1h,")),
        [("directory.oncall[0].rotation.every", "every: -1h")],
    ),
    (
        "grant_for not a duration",
        spec_with(("grant_for: 4h", "grant_for: four hours")),
        [("flows[0].grant_for", "grant_for: four hours")],
    ),
    (
        "unknown bundle",
        spec_with(("{bundle: billing-debug}", "{bundle: billing-debugg}")),
        [("flows[0].targets[1].bundle", "{bundle: billing-debugg}")],
    ),
    (
        "unknown integration in a flow target",
        spec_with(
            (
                "- {integration: prod-postgres, resource_type: database, permissions: [read_only, read_write]",
                "- {integration: prod-postgress, resource_type: database, permissions: [read_only, read_write]",
            )
        ),
        [("flows[0].targets[0].integration", "prod-postgress")],
    ),
    (
        "unknown integration in a bundle target",
        spec_with(
            (
                "- {integration: prod-postgres, resource_type: database, permissions: [read_only], resources",
                "- {integration: prod-pg, resource_type: database, permissions: [read_only], resources",
            )
        ),
        [("bundles[0].targets[0].integration", "prod-pg,")],
    ),
    (
        "unknown permission of the integration in a flow target",
        spec_with(("permissions: [read_only, read_write]", "permissions: [read_only, write]")),
        [("flows[0].targets[0].permissions[1]", "permissions: [read_only, write]")],
    ),
    (
        "unknown resource type in a flow target",
        spec_with(
            (
                "resource_type: database, permissions: [read_only, read_write]",
                "resource_type: table, permissions: [read_only, read_write]",
            )
        ),
        [("flows[0].targets[0].resource_type", "resource_type: table")],
    ),
    (
        "unknown resource name in a bundle",
        spec_with(("resources: {names: [billing]}", "resources: {names: [billling]}")),
        [("bundles[0].targets[0].resources.names[0]", "billling")],
    ),
    (
        "unknown access_scope",
        spec_with(("{access_scope: eu-prod,", "{access_scope: us-prod,")),
        [("flows[0].targets[2].access_scope", "{access_scope: us-prod")],
    ),
    (
        "unknown permission in an access_scope target",
        spec_with(
            (
                "{access_scope: eu-prod, permissions: [read_only]}",
                "{access_scope: eu-prod, permissions: [reader]}",
            )
        ),
        [("flows[0].targets[2].permissions[0]", "permissions: [reader]")],
    ),
    (
        "unknown space",
        spec_with(("    # space: payments ", "    space: paymnts ")),
        [("flows[0].space", "space: paymnts")],
    ),
    (
        "more than 5 escalation tiers",
        spec_with(
            ("          - conditions: [{attribute: user, op: is, values: [cto@example.com]}]", SIX_TIERS)
        ),
        [("flows[0].approval.escalation.tiers", "        tiers:")],
    ),
    (
        "escalation with automatic approval",
        minimal_with(
            (
                "    targets:",
                "    approval: {escalation: {tiers: [{conditions: [{attribute: group, values: [dba]}]}]}}\n    targets:",
            )
        ),
        [("flows[0].approval.escalation", "approval: {escalation")],
    ),
    (
        "approver groups with automatic approval",
        minimal_with(
            (
                "    targets:",
                "    approval: {groups: [{conditions: [{attribute: group, values: [dba]}]}]}\n    targets:",
            )
        ),
        [("flows[0].approval.groups", "approval: {groups")],
    ),
    (
        "approvers without groups",
        minimal_with(("    targets:", "    approval: {type: approvers}\n    targets:")),
        [("flows[0].approval.groups", "approval: {type: approvers}")],
    ),
    (
        "distinct_approvers with any_of",
        spec_with(("distinct_approvers: false", "distinct_approvers: true")),
        [("flows[0].approval.distinct_approvers", "distinct_approvers: true")],
    ),
    (
        "automatic flow with approvers",
        spec_with(("type: self_serve", "type: automatic")),
        [("flows[0].approval.type", "type: approvers")],
    ),
    (
        "duplicate flow names",
        MINIMAL + MINIMAL[MINIMAL.index("  - name: deployers") :].replace("[sre]", "[ops]"),
        [
            (
                "flows[1].name",
                "  - name: deployers\n    requestors: {conditions: [{attribute: group, values: [ops]}]}",
            )
        ],
    ),
    (
        "duplicate integration names",
        minimal_with(("flows:", "  - {name: deploy, type: noop, permissions: {deployer: {}}}\nflows:")),
        [("integrations[1].name", "  - {name: deploy, type: noop")],
    ),
    (
        "a bad query in an access scope",
        spec_with(
            (
                """query: 'resource_tag.region = "eu" and resource_tag.env = "prod"'""",
                """query: 'resource_tag.region = = "eu"'""",
            )
        ),
        [("access_scopes[0].query", "query: 'resource_tag.region = =")],
    ),
    (
        "a bad query in a target's resources",
        minimal_with(
            (
                "permissions: [deployer]}]",
                "permissions: [deployer], resources: {query: 'resource_name ~ x'}}]",
            )
        ),
        [("flows[0].targets[0].resources.query", "resources: {query:")],
    ),
    (
        "two resource selectors at once",
        spec_with(("resources: {any: true}}", "resources: {any: true, names: [billing]}}")),
        [("flows[0].targets[0].resources", "resources: {any: true, names")],
    ),
    (
        "unknown request_for value",
        spec_with(
            ("request_for: [themselves, direct_reports, others]", "request_for: [themselves, everyone]")
        ),
        [("flows[0].request_for[1]", "request_for: [themselves, everyone]")],
    ),
    (
        "grantees without others",
        spec_with(("request_for: [themselves, direct_reports, others]", "request_for: [themselves]")),
        [("flows[0].grantees", "    grantees:")],
    ),
    (
        "unknown time zone",
        spec_with(("timezone: UTC", "timezone: Mars/Olympus")),
        [("timezone", "timezone: Mars/Olympus")],
    ),
    (
        "unknown integration type",
        spec_with(("type: webhook", "type: webhok")),
        [("integrations[2].type", "type: webhok")],
    ),
    (
        "a window whose from equals to",
        spec_with(("when: always  ", "when: {from: '08:00', to: '08:00'}  ")),
        [("flows[0].when.to", "when: {from:")],
    ),
    (
        "a window with an unknown day",
        spec_with(("when: always  ", "when: {days: [monday], from: '08:00', to: '20:00'}  ")),
        [("flows[0].when.days[0]", "when: {days")],
    ),
    (
        "a when that is neither always nor a window",
        spec_with(("when: always  ", "when: sometimes  ")),
        [("flows[0].when", "when: sometimes")],
    ),
    (
        "an invalid flow name",
        minimal_with(("  - name: deployers", "  - name: deploy ers")),
        [("flows[0].name", "name: deploy ers")],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [pytest.param(*c[1:], id=c[0]) for c in BAD_CONFIGS])
def test_a_bad_config_names_each_problem_by_path_and_line(text: str, expected: list[tuple[str, str]]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(text)
    found = sorted((p.path, p.line) for p in caught.value.problems)
    assert found == sorted((path, line_of(text, marker)) for path, marker in expected)
    assert all(p.severity == "error" and p.message for p in caught.value.problems)
    for problem in caught.value.problems:
        assert problem.path in str(caught.value)


UNKNOWN_KEY_MESSAGES: list[Any] = [
    # (description, text, path, words the message must contain)
    (
        "suggests the closest key and lists the allowed ones",
        spec_with(("max_times: 3", "max_time: 3")),
        "flows[0].extend.max_time",
        ["unknown key 'max_time'", "did you mean 'max_times'", "allowed keys: max_times, each"],
    ),
    (
        "top level",
        spec_with(("audit_channel: C0AUDIT", "audit_chanel: C0AUDIT")),
        "audit_chanel",
        ["unknown key 'audit_chanel'", "did you mean 'audit_channel'"],
    ),
    (
        "an unknown reference says what is defined",
        spec_with(("{bundle: billing-debug}", "{bundle: billing-debugg}")),
        "flows[0].targets[1].bundle",
        ["unknown bundle 'billing-debugg'", "did you mean 'billing-debug'", "defined: billing-debug"],
    ),
    (
        "a bad op lists the ops",
        spec_with(("op: is, values: [sre, backend]", "op: equals, values: [sre, backend]")),
        "flows[0].requestors.conditions[0].op",
        ["'equals'", "allowed: is, is_not, contains, does_not_contain, starts_with, ends_with"],
    ),
    (
        "a bad flow type says what was written, the closest and what is allowed",
        spec_with(("type: self_serve", "type: selfserve")),
        "flows[0].type",
        ["'selfserve' (did you mean 'self_serve'?) — allowed: self_serve, automatic"],
    ),
    (
        "a bad combine",
        spec_with(("combine: any_of", "combine: one")),
        "flows[0].approval.combine",
        ["'one' — allowed: any_of, all_of"],
    ),
    (
        "a bad notify",
        spec_with(("notify: both", "notify: slack")),
        "flows[0].approval.notify",
        ["'slack' — allowed: dm, channel, both"],
    ),
    (
        "a bad request_for",
        spec_with(("request_for: [themselves, direct_reports, others]", "request_for: [themselves, me]")),
        "flows[0].request_for[1]",
        ["'me' — allowed: themselves, direct_reports, others"],
    ),
    (
        "a bad day",
        spec_with(("when: always", "when: {days: [mon, thurs], from: '08:00', to: '20:00'}")),
        "flows[0].when.days[1]",
        ["'thurs' (did you mean 'thu'?) — allowed: mon, tue, wed, thu, fri, sat, sun"],
    ),
    (
        "a bad `when` word",
        spec_with(("when: always", "when: sometimes")),
        "flows[0].when",
        ["'sometimes' — allowed: always, or a window"],
    ),
    (
        "a bad match",
        spec_with(("match: all                        # all = AND", "match: some                        # all = AND")),
        "flows[0].requestors.match",
        ["'some' — allowed: all, any"],
    ),
    (
        "a bad true/false",
        spec_with(("require_duration: true ", "require_duration: maybe ")),
        "flows[0].require_duration",
        ["'maybe' — allowed: true, false"],
    ),
    (
        "notify on a channel needs the channel",
        spec_with(("      channel: C0DBA", "      # no channel")),
        "flows[0].approval.notify",
        ["`notify: both` needs `channel: C…`"],
    ),
    (
        "grant_for under one minute",
        spec_with(("grant_for: 4h", "grant_for: 30s")),
        "flows[0].grant_for",
        ["grant_for 30s is under one minute; allowed: 1m or more, or `indefinite`"],
    ),
    (
        "owner among the requestor conditions",
        spec_with(("- {attribute: group, op: is, values: [sre, backend]}",
                   "- {attribute: owner, op: is, values: [true]}")),
        "flows[0].requestors.conditions[0].attribute",
        ["attribute `owner` applies to approvers only", "not to requestors"],
    ),
    (
        "owner among the grantee conditions",
        spec_with(("conditions: [{attribute: group, op: is, values: [sre, contractors]}]",
                   "conditions: [{attribute: group, op: is, values: [sre]}, {attribute: owner, values: [true]}]")),
        "flows[0].grantees.conditions[1].attribute",
        ["attribute `owner` applies to approvers only", "not to grantees"],
    ),
    (
        "a negative duration says it must be positive",
        spec_with(("grant_for: 4h", "grant_for: -1h")),
        "flows[0].grant_for",
        ["positive"],
    ),
    (
        "a bad query shows where",
        spec_with(
            (
                """query: 'resource_tag.region = "eu" and resource_tag.env = "prod"'""",
                """query: 'resource_tag.region = = "eu"'""",
            )
        ),
        "access_scopes[0].query",
        ["bad query", "line 1, column 23"],
    ),
    (
        "an unknown integration type lists the types",
        spec_with(("type: webhook", "type: webhok")),
        "integrations[2].type",
        ["'webhok'", "postgresql, slack_usergroup, webhook, noop"],
    ),
]


@pytest.mark.parametrize(
    ("text", "path", "words"), [pytest.param(*c[1:], id=c[0]) for c in UNKNOWN_KEY_MESSAGES]
)
def test_problem_messages_say_what_is_allowed(text: str, path: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(text)
    messages = [p.message for p in caught.value.problems if p.path == path]
    assert messages, [str(p) for p in caught.value.problems]
    for word in words:
        assert any(word in m for m in messages), (word, messages)


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    text = spec_with(
        ("audit_channel: C0AUDIT", "audit_chanel: C0AUDIT"),
        ("op: is, values: [sre, backend]", "op: equals, values: [sre, backend]"),
        ("max_times: 3", "max_times: 11"),
        ("pending_timeout: 24h", "pending_timeout: -1h"),
    )
    with pytest.raises(ConfigError) as caught:
        load_config_text(text)
    assert sorted(p.path for p in caught.value.problems) == [
        "audit_chanel",
        "flows[0].approval.pending_timeout",
        "flows[0].extend.max_times",
        "flows[0].requestors.conditions[0].op",
    ]


def test_the_spec_example_validates_with_every_key() -> None:
    config = load_config_text(SPEC_EXAMPLE)
    assert warnings(config) == []
    flow = config.flows[0]
    assert flow.name == "prod-db-read" and flow.type == "self_serve" and flow.labels == ["prod", "db"]
    assert flow.when == "always"
    assert flow.requestors.match == "all" and flow.requestors.conditions[0].values == ["sre", "backend"]
    assert flow.request_for == ["themselves", "direct_reports", "others"]
    assert flow.grantees is not None and flow.grantees.match == "any"
    assert [type(t).__name__ for t in flow.targets] == ["IntegrationTarget", "BundleTarget", "ScopeTarget"]
    assert flow.grant_for is not None and flow.grant_for.total_seconds() == 4 * 3600
    assert flow.require_duration is True
    assert flow.extend.max_times == 3 and flow.extend.each.total_seconds() == 1800
    approval = flow.approval
    assert (approval.type, approval.combine, approval.distinct_approvers) == ("approvers", "any_of", False)
    assert approval.groups[0].conditions[1].values == ["true"]  # YAML `true` is the text "true"
    assert approval.escalation is not None and approval.escalation.every.total_seconds() == 1800
    assert len(approval.escalation.tiers) == 1
    assert approval.pending_timeout.total_seconds() == 24 * 3600
    assert flow.settings.model_dump() == {
        "require_mfa": True,
        "require_justification": True,
        "require_approver_reason": True,
        "no_self_approval": True,
        "break_glass": False,
    }
    assert (approval.channel, approval.notify) == ("C0DBA", "both")
    assert flow.description == ""
    assert config.admins == ["secops@example.com"]
    assert config.spaces[0].name == "payments" and config.spaces[0].admins == ["pat@example.com"]
    assert config.audit_channel == "C0AUDIT" and config.timezone == "UTC"
    assert config.directory.slack_usergroups is True
    assert config.directory.users[0].attributes == {"department": "eng"}
    rotation = config.directory.oncall[0].rotation
    assert rotation is not None
    assert rotation.every.days == 7 and rotation.members == ["alice@example.com", "bob@example.com"]
    pagerduty, opsgenie = config.directory.oncall[1].pagerduty, config.directory.oncall[2].opsgenie
    assert pagerduty is not None and (pagerduty.schedule_id, pagerduty.token_env) == ("PABC123", "PAGERDUTY_TOKEN")
    assert opsgenie is not None and (opsgenie.schedule, opsgenie.token_env) == ("payments", "OPSGENIE_TOKEN")
    assert [s.provider for s in config.directory.oncall] == [None, "pagerduty", "opsgenie"]
    assert [i.type for i in config.integrations] == ["postgresql", "slack_usergroup", "webhook"]
    postgres = config.integrations[0]
    assert postgres.owners == ["dba@example.com"] and postgres.risk_level == "high"
    assert postgres.permissions["read_write"].roles == ["billing_rw"]
    assert config.bundles[0].name == "billing-debug"
    assert config.access_scopes[0].name == "eu-prod"


def test_the_spec_example_round_trips_through_its_dump() -> None:
    config = load_config_text(SPEC_EXAMPLE)
    dumped = config.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    assert Config.model_validate(dumped) == config


def test_defaults_of_a_minimal_flow() -> None:
    flow = load_config_text(MINIMAL).flows[0]
    assert flow.request_for == ["themselves"]
    assert flow.grant_for is not None and flow.grant_for.total_seconds() == 3600
    assert flow.approval.type == "automatic" and flow.extend.max_times == 0
    assert flow.extend.each.total_seconds() == 1800 and flow.settings.no_self_approval is True


def test_grant_for_indefinite() -> None:
    config = load_config_text(MINIMAL.replace("    targets:", "    grant_for: indefinite\n    targets:"))
    assert config.flows[0].grant_for is None
    assert config.flows[0].model_dump(mode="json")["grant_for"] == "indefinite"


def test_the_json_schema_accepts_the_spec_example_and_refuses_unknown_keys() -> None:
    schema = Config.model_json_schema(by_alias=True, mode="validation")
    validator = jsonschema.Draft202012Validator(schema)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert [e.message for e in validator.iter_errors(yaml.safe_load(SPEC_EXAMPLE))] == []
    bad = yaml.safe_load(spec_with(("max_times: 3", "max_time: 3")))
    errors = list(validator.iter_errors(bad))
    assert errors and any("max_time" in e.message for e in errors)


def test_load_config_file(tmp_path: Any) -> None:
    path = tmp_path / "accessbot.yml"
    path.write_text(SPEC_EXAMPLE, encoding="utf-8")
    assert load_config_file(str(path)).flows[0].name == "prod-db-read"
    with pytest.raises(ConfigError) as caught:
        load_config_file(str(tmp_path / "missing.yml"))
    assert "cannot read" in caught.value.problems[0].message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("flows: [\n", ConfigProblem("", "", 2), id="YAML syntax error has a line"),
        pytest.param("- a\n- b\n", ConfigProblem("", "", 1), id="not a mapping"),
    ],
)
def test_files_that_are_not_configs(text: str, expected: ConfigProblem) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(text)
    (problem,) = caught.value.problems
    assert (problem.path, problem.line) == (expected.path, expected.line)


def test_an_empty_file_is_an_empty_config() -> None:
    assert load_config_text("").flows == []


NOBODY_APPROVES = """\
directory:
  users:
    - {email: alice@example.com, groups: [sre]}
    - {email: dana@example.com, groups: [dba]}
integrations:
  - {name: deploy, type: noop, owners: [owner@example.com], resources: [{type: service, name: api}], permissions: {deployer: {}}}
flows:
  - name: deployers
    requestors: {conditions: [{attribute: group, values: [sre]}]}
    targets: [{integration: deploy, permissions: [deployer]}]
    approval:
      type: approvers
      combine: COMBINE
      groups:
        - conditions: [{attribute: group, values: [GROUP0]}]
        - conditions: [{attribute: group, values: [GROUP1]}]
"""

WARNING_CASES: list[Any] = [
    # (description, combine, group0, group1, expected warning paths)
    ("any_of: one group nobody is in still leaves the other", "any_of", "dba", "security", []),
    ("any_of: no group anybody is in", "any_of", "security", "auditors", ["flows[0].approval"]),
    ("all_of: one group nobody is in blocks the flow", "all_of", "dba", "security", ["flows[0].approval"]),
    ("all_of: every group has somebody", "all_of", "dba", "sre", []),
]


@pytest.mark.parametrize(
    ("combine", "group0", "group1", "expected"), [pytest.param(*c[1:], id=c[0]) for c in WARNING_CASES]
)
def test_warnings_for_a_flow_nobody_can_approve(
    combine: str, group0: str, group1: str, expected: list[str]
) -> None:
    text = NOBODY_APPROVES.replace("COMBINE", combine).replace("GROUP0", group0).replace("GROUP1", group1)
    config = load_config_text(text)  # a warning never refuses the file
    found = warnings(config)
    assert [p.path for p in found] == expected
    assert all(p.severity == "warning" and "can never be approved" in p.message for p in found)


@pytest.mark.parametrize("enabled", [True, False], ids=["collector on", "collector off"])
def test_loading_leaves_the_garbage_collector_as_it_found_it(enabled: bool) -> None:
    import gc

    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        load_config_text(SPEC_EXAMPLE)
        assert gc.isenabled() is enabled
        with pytest.raises(ConfigError):
            load_config_text("flows: [{name: x}]")
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()
