"""policy/typeahead.py: the indexed type-ahead returns exactly what the plain reading of the rule gives.

The plain reading: every resource a usable flow's rules offer whose haystack (name, path, type, integration,
lower-cased) contains the text; names starting with it first, then by name and key; the first ``limit``.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.datasets import SIZES, build, group_name, user_email
from policy.config import Config
from policy.flows import CompiledPolicy
from policy.identity import Identity
from policy.resources import Resource
from policy.typeahead import Typeahead, haystack

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
CONFIG = Config.model_validate(build(SIZES["small"]))
POLICY = CompiledPolicy(CONFIG)
USERS = [Identity(slack_id=f"U{i:07d}", email=user_email(i), groups=frozenset({group_name(i % 10)})) for i in range(10)]
NEEDLES = ["", "p", "pr", "pro", "prod", "prod-team1", "TEAM3", "eam", "team12-0", "clu", "int0", "schema", "zzz"]
NEEDLES.append(" dev ")


def plain_reading(policy: CompiledPolicy, identity: Identity, text: str, limit: int) -> list[str]:
    needle = text.strip().lower()
    found: dict[str, Resource] = {}
    for compiled in policy.usable_flows(identity, NOW):
        for rule in compiled.rules:
            for resource in policy.catalog.offered(rule):
                if needle in haystack(resource):
                    found[resource.key] = resource
    ranked = sorted(found.values(), key=lambda r: (not r.name.lower().startswith(needle), r.name, r.key))
    return [r.key for r in ranked[:limit]]


@pytest.mark.parametrize("needle", NEEDLES)
@pytest.mark.parametrize("limit", [1, 20, 100])
@pytest.mark.parametrize("small_offer", [0, 2048], ids=["postings", "scans"])
def test_search_is_the_plain_reading(needle: str, limit: int, small_offer: int) -> None:
    policy = CompiledPolicy(CONFIG)
    policy.typeahead = Typeahead(policy.catalog, small_offer=small_offer)
    for user in USERS:
        found = [r.key for r in policy.requestable_resources(user, NOW, needle, limit=limit)]
        assert found == plain_reading(policy, user, needle, limit), (user.email, needle)


def test_the_bench_users_get_results() -> None:
    """The comparison above is not vacuous: users have resources and the needles find some of them."""
    assert all(POLICY.requestable_resources(user, NOW, "", limit=5) for user in USERS)
    assert any(POLICY.requestable_resources(user, NOW, "eam", limit=5) for user in USERS)


@given(st.text(alphabet="abdeilmnoprstv-0123 ", max_size=6), st.integers(min_value=1, max_value=30), st.integers(0, 9))
@settings(max_examples=200, deadline=None)
def test_any_text_is_the_plain_reading(text: str, limit: int, user: int) -> None:
    found = [r.key for r in POLICY.requestable_resources(USERS[user], NOW, text, limit=limit)]
    assert found == plain_reading(POLICY, USERS[user], text, limit)


def test_a_new_policy_takes_over_the_indexes_of_unchanged_integrations() -> None:
    old = CompiledPolicy(CONFIG)
    old.requestable_resources(USERS[0], NOW, "pro")  # builds the indexes it needs
    data = build(SIZES["small"])
    data["flows"][0]["grant_for"] = "2h"  # a change elsewhere
    data["integrations"][1]["resources"].append({"type": "database", "name": "brand-new"})
    new = CompiledPolicy(Config.model_validate(data), previous=old)
    assert new.typeahead.index("int0") is old.typeahead.index("int0")
    assert new.typeahead.index("int1") is not old.typeahead.index("int1")
    assert "brand-new" in [r.name for r in new.typeahead.index("int1").ranked]


def test_first_searches_at_once_build_each_index_and_offer_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Right after a start, people type at once: a search that comes while another builds what both need waits
    for that build and then gets the same answer, rather than building it again beside it."""
    from policy import typeahead

    builds: list[str] = []
    offers: list[int] = []
    real_postings, real_offers = typeahead.IntegrationIndex._build_postings, Typeahead._build_offers
    arrived = threading.Barrier(8)

    def postings(index: typeahead.IntegrationIndex) -> None:
        builds.append(index.ranked[0].integration)
        time.sleep(0.05)  # a slow build: every other search arrives while it runs
        real_postings(index)

    def build_offers(self: Typeahead, rule: Any) -> Any:
        offers.append(id(rule))
        return real_offers(self, rule)

    monkeypatch.setattr(typeahead.IntegrationIndex, "_build_postings", postings)
    monkeypatch.setattr(Typeahead, "_build_offers", build_offers)
    policy = CompiledPolicy(CONFIG)
    policy.typeahead = Typeahead(policy.catalog, small_offer=0)  # through the postings
    user = next(u for u in USERS if policy.requestable_resources(u, NOW, "", limit=1))
    builds.clear()
    offers.clear()
    policy.typeahead = Typeahead(policy.catalog, small_offer=0)
    answers: list[list[str]] = []

    def search() -> None:
        arrived.wait(timeout=10)
        answers.append([r.key for r in policy.requestable_resources(user, NOW, "eam", limit=20)])

    threads = [threading.Thread(target=search) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(answers) == 8
    assert all(a == plain_reading(policy, user, "eam", 20) for a in answers)
    assert answers[0]  # it finds something: the comparison is not vacuous
    assert sorted(builds) == sorted(set(builds)) and builds
    assert sorted(offers) == sorted(set(offers)) and offers
