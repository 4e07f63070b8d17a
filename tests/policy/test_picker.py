"""The resource picker, the request form, user text, and what descriptions say of break-glass (pure policy)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.lifecycle.explain import explain_user
from policy.config import Config
from policy.describe import describe_flow
from policy.errors import InvalidRequest
from policy.flows import CompiledPolicy
from policy.identity import Identity
from policy.picker import bundle_option_id, configured_risk, options, resolve, resource_option_id
from policy.request_form import request_form
from policy.user_text import clean_user_text

MONDAY_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday
SATURDAY = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SRE = Identity("UALICE", "alice@example.com", groups=frozenset({"sre"}))


def policy(**changes: Any) -> CompiledPolicy:
    raw: dict[str, Any] = {
        "integrations": [
            {"name": "db", "type": "noop", "resources": [
                {"type": "database", "name": "billing"}, {"type": "database", "name": "ledger"},
                {"type": "database", "name": "search", "risk_level": "low"},
                {"type": "database", "name": "n" * 200},
            ], "permissions": {"read_only": {}, "read_write": {"risk_level": "high"}}},
            {"name": "web", "type": "noop", "resources": [{"type": "service", "name": "api"}],
             "permissions": {"deployer": {}}},
        ],
        "bundles": [{"name": "billing-debug", "targets": [
            {"integration": "db", "permissions": ["read_only"], "resources": {"names": ["billing", "ledger"]}}]},
            {"name": "secret", "targets": [
                {"integration": "db", "permissions": ["read_write"], "resources": {"names": ["billing"]}}]}],
        "flows": [
            {"name": "read", "requestors": {"conditions": [{"attribute": "group", "values": ["sre"]}]},
             "targets": [{"integration": "db", "permissions": ["read_only"]}, {"integration": "web",
                                                                               "permissions": ["deployer"]}],
             "grant_for": "4h", "require_duration": True},
            {"name": "office-write", "requestors": {"conditions": [{"attribute": "group", "values": ["sre"]}]},
             "when": {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "18:00"},
             "targets": [{"integration": "db", "permissions": ["read_write"], "resources": {"names": ["billing"]}}],
             "request_for": ["others"], "grant_for": "2h"},
        ],
    }
    raw.update(changes)
    return CompiledPolicy(Config.model_validate(raw))


def test_option_ids_are_short_stable_and_resolve_through_the_catalog() -> None:
    p = policy()
    long_key = "db/database/" + "n" * 200
    value = resource_option_id(long_key)
    assert value == resource_option_id(long_key) and len(value) <= 20 and value != resource_option_id("db/database/x")
    assert resolve(policy(), [value]) == [long_key]  # another load of the same config: the same id
    assert resolve(p, [bundle_option_id("billing-debug"), resource_option_id("db/database/billing")]) == [
        "db/database/billing", "db/database/ledger"]  # bundle expanded, no repeats
    assert resolve(p, ["db/database/search"]) == ["db/database/search"]  # an exact key (scripts) works too
    with pytest.raises(InvalidRequest) as refused:
        resolve(p, ["r:gone"])
    assert refused.value.field == "resource"


def test_options_group_by_integration_and_offer_only_bundles_the_user_may_request() -> None:
    groups = options(policy(), SRE, MONDAY_9)
    assert [g.label for g in groups] == ["db", "web"]
    labels = [o.label for o in groups[0].options]
    assert labels[0] == "billing-debug — bundle, 2 resources"
    assert "secret — bundle, 1 resource" in labels  # read_write on billing: office-write, open on Monday 9:00
    assert "secret — bundle, 1 resource" not in [o.label for g in options(policy(), SRE, SATURDAY) for o in g.options]
    assert all(len(o.value) <= 150 for g in groups for o in g.options)
    assert [o.label for g in options(policy(), SRE, MONDAY_9, "api") for o in g.options] == ["api · service"]


@pytest.mark.parametrize(
    ("description", "keys", "permission", "expected"),
    [
        ("several resources: what every one offers", ["db/database/billing", "db/database/ledger"], None,
         {"permissions": ["read_only"], "grantees": "none", "show_duration": True}),
        ("a flow for others only: For whom is required and never says 'yourself'", ["db/database/billing"],
         "read_write", {"permissions": ["read_only", "read_write"], "grantees": "required", "show_duration": False}),
        ("two integrations cannot go in one request", ["db/database/billing", "web/service/api"], None,
         {"permissions": [], "grantees": "optional", "show_duration": True}),  # every flow's form
    ],
)
def test_request_form_follows_the_chosen_resources_and_permission(
    description: str, keys: list[str], permission: str | None, expected: dict[str, Any]
) -> None:
    form = request_form(policy(), SRE, MONDAY_9, keys, permission)
    assert [p.name for p, _ in form.permissions] == expected["permissions"], description
    assert form.grantees == expected["grantees"], description
    assert form.show_duration == expected["show_duration"], description
    if form.grantees == "required":
        assert "yourself" not in form.grantee_hint and "others only" in form.grantee_hint
    if not expected["permissions"]:
        assert form.problem and "different integrations" in form.problem


def test_the_opening_form_knows_the_longest_limit_and_says_when_a_closed_flow_opens() -> None:
    form = request_form(policy(), SRE, MONDAY_9)
    assert form.max_hours == 4 and not form.indefinite  # every flow has a limit: never "no limit"
    only_windowed = policy(flows=[policy().config.flows[1].model_dump(by_alias=True)])
    closed = request_form(only_windowed, SRE, SATURDAY)
    assert closed.opens_next == ("office-write", datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    assert request_form(only_windowed, Identity("UBOB", "bob@example.com"), SATURDAY).opens_next is None


def test_risk_is_what_was_configured_or_nothing() -> None:
    p = policy()
    billing, search = p.catalog.resources["db/database/billing"], p.catalog.resources["db/database/search"]
    read_only, read_write = p.catalog.permission("db", "read_only"), p.catalog.permission("db", "read_write")
    assert configured_risk(p.config, [billing], read_only) is None
    assert configured_risk(p.config, [billing, search], read_only) == "low"
    assert configured_risk(p.config, [search], read_write) == "high"


@pytest.mark.parametrize(
    ("description", "text", "expected"),
    [
        ("plain text stays", "INC-1 db down", "INC-1 db down"),
        ("blank-line runs collapse to one blank line", "a\n\n\n\n \n\nb", "a\n\nb"),
        ("CRLF becomes LF, trailing spaces go", "a  \r\nb\r", "a\nb"),
        ("tabs are fine", "a\tb", "a\tb"),
        ("NUL", "a\x00b", None),
        ("bidi override", "\u202eabc", None),
        ("bidi isolate", "a\u2066b\u2069", None),
        ("escape", "a\x1b[31m", None),
        ("too long", "x" * 1001, None),
    ],
)
def test_clean_user_text(description: str, text: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(InvalidRequest) as refused:
            clean_user_text(text, field="justification", what="justification", limit=1000)
        assert refused.value.field == "justification", description
    else:
        assert clean_user_text(text, field="justification", what="justification", limit=1000) == expected


BREAK_GLASS = {
    "directory": {"users": [{"email": "alice@example.com", "groups": ["sre"]},
                            {"email": "dana@example.com", "groups": ["dba"]}]},
    "integrations": [{"name": "db", "type": "noop", "resources": [{"type": "database", "name": "billing"}],
                      "permissions": {"read_write": {}}}],
    "flows": [{"name": "emergency", "requestors": {"conditions": [{"attribute": "group", "values": ["sre"]}]},
               "targets": [{"integration": "db", "permissions": ["read_write"]}],
               "approval": {"type": "approvers", "channel": "C0DBA", "notify": "channel",
                            "groups": [{"conditions": [{"attribute": "group", "values": ["dba"]}]}]},
               "settings": {"break_glass": True}}],
}


def test_descriptions_and_explain_say_break_glass_and_the_channel() -> None:
    config = Config.model_validate(BREAK_GLASS)
    text = describe_flow(config.flows[0], config)
    assert "break-glass: granted at once without approval, reviewed afterwards by any of: group dba" in text
    assert "asked in channel C0DBA only" in text and "approved by" not in text
    explained = explain_user(config, "alice@example.com", MONDAY_9)
    assert "BREAK-GLASS — granted at once, without approval" in explained and "Acknowledge / Revoke now" in explained
    assert "asked in channel C0DBA only (no DMs)" in explained


def test_a_background_build_of_the_option_ids_pauses_between_pieces_until_a_caller_waits_for_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The warm-up builds the option ids of every resource with pauses (stepping aside for requests being
    answered); once an options load needs them and waits for that build, the build goes on without pausing."""
    import threading
    import time

    from bench.datasets import SIZES, build
    from policy import picker

    monkeypatch.setattr(picker, "PAUSE_EVERY", 100)
    policy = CompiledPolicy(Config.model_validate(build(SIZES["small"])))  # 1,000 resources: ten pieces
    pauses: list[int] = []
    waiter: list[threading.Thread] = []

    def pause() -> None:
        pauses.append(picker._build.callers)
        if len(pauses) == 3:  # an options load arrives and needs the ids now
            key = next(iter(policy.catalog.resources))
            waiter.append(threading.Thread(target=resolve, args=(policy, [resource_option_id(key)])))
            waiter[0].start()
            deadline = time.monotonic() + 10
            while picker._build.callers < 2 and time.monotonic() < deadline:
                time.sleep(0.001)

    picker.prepare(policy, pause=pause)
    waiter[0].join(10)
    assert pauses == [1, 1, 1]  # three pieces paused, none once the options load waited
    assert not waiter[0].is_alive() and picker._build.callers == 0
    key = list(policy.catalog.resources)[-1]
    assert resolve(policy, [resource_option_id(key)]) == [key]  # every id was built
