"""Rows of the policy engine: config load, memory, decisions (side by side with cedarpy and pycasbin), cold
decisions, type-ahead."""

from __future__ import annotations

import gc
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.engines import Casbin, Case, Cedar, accessbot_decides, agreement, cedar_request
from bench.registry import NOW, SizeRun, percentiles, rows

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs"


@rows(
    "config load: YAML → compiled policy (fresh process)",
    "  of which read, parse, validate, cross-check",
    "  of which compile",
    "RSS after load",
    "peak RSS while loading",
    "config reload, same file (PolicyHolder.reload)",
    "RSS after the reload / peak while reloading",
    "type-ahead, first search after load (builds an index)",
)
def config_load(run: SizeRun) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.load_probe", str(run.path)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "config load: YAML → compiled policy (fresh process)": _ms(figures["load_s"] + figures["compile_s"]),
        "  of which read, parse, validate, cross-check": _ms(figures["load_s"]),
        "  of which compile": _ms(figures["compile_s"]),
        "RSS after load": f"{figures['rss_mb']:,.0f} MB",
        "peak RSS while loading": f"{figures['peak_rss_mb']:,.0f} MB",
        "config reload, same file (PolicyHolder.reload)": _ms(figures["reload_s"]),
        "RSS after the reload / peak while reloading":
            f"{figures['rss_after_reload_mb']:,.0f} MB / {figures['peak_rss_after_reload_mb']:,.0f} MB",
        "type-ahead, first search after load (builds an index)": _ms(figures["first_search_s"]),
    }


@rows("`accessbot check-config` (the whole command)")
def check_config(run: SizeRun) -> dict[str, str]:
    command = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main(sys.argv[1:]))"]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "check-config", str(run.path)], cwd=ROOT, env=_env(), capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        return {"`accessbot check-config` (the whole command)": f"failed (exit {done.returncode})"}
    return {"`accessbot check-config` (the whole command)": _ms(elapsed)}


# --- decisions ----------------------------------------------------------------------------------------------


def _identities(run: SizeRun) -> list[Any]:
    found = run.shared.get("identities")
    if found is None:
        policy = run.policy
        found = run.shared["identities"] = [
            policy.directory.build_identity(slack_id=u.slack_id, email=u.email, now=NOW)
            for u in policy.config.directory.users
        ]
    return found


def _cases(run: SizeRun, count: int, seed: int, identities: list[Any] | None = None) -> list[Case]:
    """Questions, about half of them allowed: a resource from a flow of the user's group, or any resource."""
    policy = run.policy
    rng = random.Random(seed)
    people = identities or _identities(run)
    by_group: dict[str, list[Any]] = {}
    for compiled in policy.flows.values():
        (condition,) = compiled.flow.requestors.conditions
        by_group.setdefault(condition.values[0], []).append(compiled)
    keys = list(policy.catalog.resources)
    cases = []
    for _ in range(count):
        identity = people[rng.randrange(len(people))]
        flows = [f for g in sorted(identity.groups) for f in by_group.get(g, [])]
        if flows and rng.random() < 0.5:
            compiled = flows[rng.randrange(len(flows))]
            rule = compiled.rules[rng.randrange(len(compiled.rules))]
            offered = policy.catalog.offered(rule)
            if offered:
                resource = offered[rng.randrange(len(offered))]
                permissions = sorted(rule.permissions or policy.catalog.permissions[resource.integration])
                cases.append(Case(identity, resource.key, permissions[rng.randrange(len(permissions))]))
                continue
        key = keys[rng.randrange(len(keys))]
        resource = policy.catalog.resources[key]
        permissions = sorted(policy.catalog.permissions[resource.integration])
        cases.append(Case(identity, key, permissions[rng.randrange(len(permissions))]))
    return cases


def _rate(seconds: float, batch: Callable[[], int]) -> float:
    """Decisions per second: ``batch`` (returning how many it decided) run again and again for ``seconds``."""
    batch()  # warm up
    done = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        done += batch()
    return done / (time.perf_counter() - started)


def _engines(run: SizeRun) -> tuple[Cedar, Casbin, dict[str, str]]:
    built = run.shared.get("engines")
    if built is None:
        policy, identities = run.policy, _identities(run)
        started = time.perf_counter()
        cedar = Cedar(policy.config, policy, identities)
        cedar_s = time.perf_counter() - started
        started = time.perf_counter()
        casbin = Casbin(policy.config, policy, identities)
        casbin_s = time.perf_counter() - started
        setup = {"cedarpy": _ms(cedar_s), "casbin": _ms(casbin_s)}
        built = run.shared["engines"] = (cedar, casbin, setup)
    return built


def _accessbot_rate(run: SizeRun) -> tuple[float, list[Case]]:
    """choose_flow over 2,000 questions, decisions per second; measured once per size and shared."""
    found = run.shared.get("accessbot_rate")
    if found is None:
        policy = run.policy
        cases = _cases(run, 2_000, seed=1)

        def ours() -> int:
            for case in cases:
                accessbot_decides(policy, case, NOW)
            return len(cases)

        found = run.shared["accessbot_rate"] = (_rate(run.seconds, ours), cases)
    return found


@rows("decisions/s: accessbot (choose_flow)")
def decisions(run: SizeRun) -> dict[str, str]:
    """accessbot alone (``--only choose_flow``); the engines side by side are the next rows."""
    rate, _ = _accessbot_rate(run)
    return {"decisions/s: accessbot (choose_flow)": f"{rate:,.0f}"}


@rows(
    "decisions/s: cedarpy (is_authorized_batch, pre-parsed)",
    "decisions/s: pycasbin (enforce)",
    "accessbot ÷ cedarpy",
    "accessbot ÷ pycasbin",
    "same answers (2,000 questions)",
    "engine setup: cedarpy / pycasbin",
)
def engines(run: SizeRun) -> dict[str, str]:
    """The same questions to cedarpy and pycasbin (their setup takes seconds at the large size)."""
    policy = run.policy
    accessbot_rate, cases = _accessbot_rate(run)
    cedar, casbin, setup = _engines(run)
    requests = [cedar_request(c) for c in cases[:500]]

    def theirs_cedar() -> int:
        cedar.decide(requests)
        return len(requests)

    def theirs_casbin() -> int:
        for case in cases[:200]:
            casbin.decide(case)
        return 200

    cedar_rate = _rate(run.seconds, theirs_cedar)
    casbin_rate = _rate(run.seconds, theirs_casbin)
    return {
        "decisions/s: cedarpy (is_authorized_batch, pre-parsed)": f"{cedar_rate:,.0f}",
        "decisions/s: pycasbin (enforce)": f"{casbin_rate:,.0f}",
        "accessbot ÷ cedarpy": f"{accessbot_rate / cedar_rate:,.0f}×",
        "accessbot ÷ pycasbin": f"{accessbot_rate / casbin_rate:,.0f}×",
        "same answers (2,000 questions)": agreement(policy, cedar, casbin, cases, NOW),
        "engine setup: cedarpy / pycasbin": f"{setup['cedarpy']} / {setup['casbin']}",
    }


@rows("cold decision, never-seen user: p50 / p99", "cold decision incl. directory lookup: p50 / p99")
def cold_decisions(run: SizeRun) -> dict[str, str]:
    """A user whose usable flows are not remembered yet (a fresh policy, each user asked once)."""
    from policy.flows import CompiledPolicy

    fresh = CompiledPolicy(run.policy.config, run.policy.catalog)
    users = fresh.config.directory.users
    order = random.Random(2).sample(range(len(users)), min(len(users), 2_000))
    questions = []  # (user, resource, permission), chosen before anything is timed
    for index in order:
        user = users[index]
        identity = fresh.directory.build_identity(slack_id=user.slack_id, email=user.email, now=NOW)
        (case,) = _cases(run, 1, seed=index, identities=[identity])
        questions.append((user, case))
    # A fresh policy is a policy just put in force, which the bot moves out of the collector's way
    # (bot.lifecycle.policy_holder.settle_memory); run.policy is already frozen, so no unfreeze here.
    gc.collect()
    gc.freeze()
    half = len(questions) // 2
    decide_only: list[float] = []
    for _, case in questions[:half]:
        started = time.perf_counter()
        accessbot_decides(fresh, case, NOW)
        decide_only.append(time.perf_counter() - started)
    with_lookup: list[float] = []
    for user, case in questions[half:]:
        started = time.perf_counter()
        identity = fresh.directory.build_identity(slack_id=user.slack_id, email=user.email, now=NOW)
        accessbot_decides(fresh, Case(identity, case.resource_key, case.permission), NOW)
        with_lookup.append(time.perf_counter() - started)
    p50, p99 = percentiles(decide_only)
    l50, l99 = percentiles(with_lookup)
    return {
        "cold decision, never-seen user: p50 / p99": f"{_us(p50)} / {_us(p99)}",
        "cold decision incl. directory lookup: p50 / p99": f"{_us(l50)} / {_us(l99)}",
    }


# --- type-ahead ---------------------------------------------------------------------------------------------


def _queries(run: SizeRun, count: int) -> list[tuple[Any, str]]:
    """(user, three letters): pieces of the names and paths of resources, and of nothing at all."""
    rng = random.Random(3)
    resources = list(run.policy.catalog.resources.values())
    people = _identities(run)
    out = []
    for n in range(count):
        if n % 10 == 9:
            text = "".join(rng.choice("qxzjkw") for _ in range(3))  # matches nothing
        else:
            resource = resources[rng.randrange(len(resources))]
            source = (resource.name if n % 2 else resource.path).lower()
            start = rng.randrange(max(1, len(source) - 2))
            text = source[start : start + 3]
        out.append((people[rng.randrange(len(people))], text))
    return out


def _typeahead(run: SizeRun, limit: int) -> tuple[float, float, float]:
    """Warm figures: every index, and the offers of every rule of the users asked, are built by a first pass
    over the same queries (the first search after a load is its own row)."""
    policy = run.policy
    queries = _queries(run, 3_000)
    for user, text in queries:
        policy.requestable_resources(user, NOW, text, limit=limit)
    timings = []
    found = 0
    for user, text in queries:
        started = time.perf_counter()
        results = policy.requestable_resources(user, NOW, text, limit=limit)
        timings.append(time.perf_counter() - started)
        found += bool(results)
    p50, p99 = percentiles(timings)
    return p50, p99, found / len(queries)


@rows("type-ahead, top 20 of a 3-letter query: p50 / p99", "type-ahead, top 100 (what the modal asks): p50 / p99")
def typeahead(run: SizeRun) -> dict[str, str]:
    p50, p99, hit = _typeahead(run, 20)
    q50, q99, _ = _typeahead(run, 100)
    return {
        "type-ahead, top 20 of a 3-letter query: p50 / p99": f"{_ms(p50)} / {_ms(p99)} ({hit:.0%} find some)",
        "type-ahead, top 100 (what the modal asks): p50 / p99": f"{_ms(q50)} / {_ms(q99)}",
    }
